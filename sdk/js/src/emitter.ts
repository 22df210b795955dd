/** Event name → the arguments its listeners receive. */
export type EventMap = Record<string, unknown[]>;

type Listener<A extends unknown[]> = (...args: A) => void;

/**
 * A minimal typed event emitter. A listener that throws must not break the SDK's own bookkeeping
 * (acks, state changes), so errors are reported asynchronously instead of propagating.
 */
export class Emitter<E extends EventMap> {
    private listeners: { [K in keyof E]?: Listener<E[K]>[] } = {};

    /** Adds a listener; returns a function that removes it. */
    on<K extends keyof E>(event: K, fn: Listener<E[K]>): () => void {
        (this.listeners[event] ||= []).push(fn);
        return () => this.off(event, fn);
    }

    /** Like `on`, but the listener runs at most once. */
    once<K extends keyof E>(event: K, fn: Listener<E[K]>): () => void {
        const off = this.on(event, ((...args: E[K]) => {
            off();
            fn(...args);
        }) as Listener<E[K]>);
        return off;
    }

    off<K extends keyof E>(event: K, fn: Listener<E[K]>): void {
        const list = this.listeners[event];
        if (list) this.listeners[event] = list.filter((l) => l !== fn);
    }

    protected emit<K extends keyof E>(event: K, ...args: E[K]): void {
        // A copy: listeners added or removed by a listener take effect from the next event.
        for (const fn of (this.listeners[event] || []).slice()) {
            try {
                fn(...args);
            } catch (err) {
                setTimeout(() => {
                    throw err;
                });
            }
        }
    }
}
