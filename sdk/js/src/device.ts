// The device id: one per browser profile or app install, kept across connections and restarts so
// that the server can keep a user's offline messages for each device (protocol.md, "connect").
import { root } from "./root.js";

/**
 * Where the client keeps its generated device id. `get` returns what `set` stored earlier (null or
 * undefined when nothing is); both may be asynchronous (React Native's AsyncStorage).
 */
export interface DeviceStore {
    get(): string | null | undefined | Promise<string | null | undefined>;
    set(device: string): void | Promise<void>;
}

/** The storage key of the default stores (localStorage, mini-program storage). */
export const DEVICE_KEY = "wspush.device";

const DEVICE_RE = /^[A-Za-z0-9_\-.:@=+!#]{1,64}$/;

/** A device id as the server accepts it: 1 to 64 characters of `A–Z a–z 0–9 _ - . : @ = + ! #`. */
export const isValidDevice = (device: unknown): device is string => typeof device == "string" && DEVICE_RE.test(device);

/** 32 random hex digits: from `crypto` when the platform has it, else from Math.random. */
export function randomDeviceId(): string {
    const crypto = root.crypto;
    try {
        if (crypto && typeof crypto.getRandomValues == "function") {
            const bytes: Uint8Array = crypto.getRandomValues(new Uint8Array(16));
            let hex = "";
            for (let i = 0; i < bytes.length; i++) hex += (bytes[i] + 0x100).toString(16).slice(1);
            return hex;
        }
        if (crypto && typeof crypto.randomUUID == "function") return (crypto.randomUUID() as string).replace(/-/g, "");
    } catch {
        // some mini-program engines expose a `crypto` that throws: fall through
    }
    let hex = "";
    while (hex.length < 32) hex += Math.floor(Math.random() * 0x10000).toString(16).padStart(4, "0");
    return hex;
}

/** Keeps the device id in memory only: a new one per client instance (Node, React Native without a store). */
export function memoryDeviceStore(): DeviceStore {
    let device: string | undefined;
    return { get: () => device, set: (d) => void (device = d) };
}

/** The part of the Web Storage API (`localStorage`) the browser store uses. */
export interface WebStorageLike {
    getItem(key: string): string | null;
    setItem(key: string, value: string): void;
}

/**
 * Browsers: `localStorage` under "wspush.device". When the storage throws (Safari's private mode,
 * storage blocked by the user), the id lives in memory for this client instead.
 */
export function localStorageDeviceStore(storage?: WebStorageLike): DeviceStore {
    let memory: string | undefined;
    const use = () => storage || root.localStorage;
    return {
        get() {
            try {
                return use().getItem(DEVICE_KEY) ?? memory;
            } catch {
                return memory;
            }
        },
        set(device) {
            memory = device;
            try {
                use().setItem(DEVICE_KEY, device);
            } catch {
                // kept in memory only
            }
        },
    };
}

/** The storage part of WeChat's `wx` and uni-app's `uni`. */
export interface MiniProgramStorageApi {
    getStorageSync(key: string): unknown;
    setStorageSync(key: string, data: string): void;
}

/** WeChat / uni-app mini-programs: the platform's storage (`wx.getStorageSync`), under "wspush.device". */
export function miniProgramDeviceStore(api: MiniProgramStorageApi): DeviceStore {
    let memory: string | undefined;
    return {
        get() {
            try {
                // An absent key reads as "" (WeChat): not a valid id, so a new one is made.
                const stored = api.getStorageSync(DEVICE_KEY);
                return typeof stored == "string" && stored ? stored : memory;
            } catch {
                return memory;
            }
        },
        set(device) {
            memory = device;
            try {
                api.setStorageSync(DEVICE_KEY, device);
            } catch {
                // storage full or unavailable: kept in memory only
            }
        },
    };
}

/** The platform's default: localStorage where it can be read, else memory. */
export function defaultDeviceStore(): DeviceStore {
    try {
        const storage = root.localStorage;
        if (storage && typeof storage.getItem == "function" && typeof storage.setItem == "function") return localStorageDeviceStore();
    } catch {
        // reading `localStorage` itself throws when storage is blocked
    }
    return memoryDeviceStore();
}

const isThenable = (x: unknown): x is PromiseLike<unknown> => !!x && typeof (x as PromiseLike<unknown>).then == "function";

/**
 * The stored device id, or a new one, stored. Synchronous when the store is (so that a client over
 * a synchronous store connects in the same tick); a promise otherwise. A store that fails costs
 * only persistence: a new id is used (`log` says why).
 */
export function loadDevice(store: DeviceStore, log: (...args: unknown[]) => void): string | Promise<string> {
    const generate = () => {
        const device = randomDeviceId();
        try {
            const done = store.set(device);
            if (isThenable(done)) done.then(undefined, (err) => log("device store: set failed", err));
        } catch (err) {
            log("device store: set failed", err);
        }
        return device;
    };
    const use = (stored: unknown) => (isValidDevice(stored) ? stored : generate());
    let stored: ReturnType<DeviceStore["get"]>;
    try {
        stored = store.get();
    } catch (err) {
        log("device store: get failed", err);
        return generate();
    }
    if (!isThenable(stored)) return use(stored);
    return Promise.resolve(stored).then(use, (err) => {
        log("device store: get failed", err);
        return generate();
    });
}
