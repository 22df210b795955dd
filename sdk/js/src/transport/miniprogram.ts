import { miniProgramDeviceStore, type MiniProgramStorageApi } from "../device.js";
import type { TransportFactory } from "../transport.js";

/** The part of WeChat's `wx` / uni-app's `uni` (and Alipay-style clones) that the transport uses. */
export interface MiniProgramSocketApi extends Partial<MiniProgramStorageApi> {
    connectSocket(options: { url: string; complete?: () => void }): MiniProgramSocketTask;
}

export interface MiniProgramSocketTask {
    onOpen(cb: () => void): void;
    onMessage(cb: (res: { data: unknown }) => void): void;
    onClose(cb: (res: { code?: number; reason?: string }) => void): void;
    onError(cb: (err: unknown) => void): void;
    send(options: { data: string }): void;
    close(options: { code?: number; reason?: string }): void;
}

/**
 * Mini-programs: `miniProgramTransport(wx)` or `miniProgramTransport(uni)`.
 * uni-app returns the SocketTask only when a callback is passed, hence the empty `complete`.
 * When `api` has `getStorageSync`/`setStorageSync`, the transport carries
 * `miniProgramDeviceStore(api)`, which the client then uses to keep its device id.
 */
export function miniProgramTransport(api: MiniProgramSocketApi): TransportFactory {
    const factory: TransportFactory = (url, events) => {
        const task = api.connectSocket({ url, complete() {} });
        task.onOpen(() => events.open());
        task.onMessage((res) => typeof res.data == "string" && events.message(res.data));
        task.onClose((res) => events.close(res.code || 1006, res.reason || ""));
        // Some platforms report a failed connection with onError only; the client ignores a
        // second close for the same connection.
        task.onError(() => events.close(1006, "socket error"));
        return {
            send: (data) => task.send({ data }),
            // Mini-program sockets accept only 1000 and 3000–4999. 4000 for an abandoned
            // connection keeps the session resumable (only 1000 ends it).
            close: (code, reason) => task.close({ code: code || 4000, reason }),
        };
    };
    if (typeof api.getStorageSync == "function" && typeof api.setStorageSync == "function") {
        factory.deviceStore = miniProgramDeviceStore(api as MiniProgramStorageApi);
    }
    return factory;
}
