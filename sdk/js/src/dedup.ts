/**
 * Remembers the last `capacity` keys it was given. Used to recognise a publication seen before
 * (by its channel, epoch and offset) without growing forever on a long-lived connection.
 */
export class RecentKeys {
    // A Set iterates in insertion order, so its first element is always the oldest.
    private keys = new Set<string>();

    constructor(private readonly capacity: number) {}

    has(key: string): boolean {
        return this.keys.has(key);
    }

    add(key: string): void {
        if (this.keys.has(key)) return;
        this.keys.add(key);
        if (this.keys.size > this.capacity) this.keys.delete(this.keys.values().next().value as string);
    }
}
