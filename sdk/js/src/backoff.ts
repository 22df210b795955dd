export interface BackoffBounds {
    /** Upper bound of the first delay, in ms. */
    min: number;
    /** No delay ever exceeds this, in ms. */
    max: number;
}

/**
 * Delay before reconnect attempt `attempt` (0 for the first): "full jitter", a uniformly random
 * value in [0, min(max, min * 2^attempt)). Spreading the delay over the whole range, rather than
 * jittering around the exponential value, is what keeps thousands of clients that lost the same
 * server from coming back in waves.
 */
export function backoffDelay(attempt: number, { min, max }: BackoffBounds, random = Math.random): number {
    return random() * Math.min(max, min * 2 ** Math.min(attempt, 30));
}
