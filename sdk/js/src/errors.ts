// Each class names itself with a string literal: minifiers rename classes, so `constructor.name`
// would not survive the browser bundle.

/** Base class of every error the SDK produces. */
export class WspushError extends Error {
    override name = "WspushError";
}

/** A call got no answer within its timeout (it may still have taken effect on the server). */
export class TimeoutError extends WspushError {
    override name = "TimeoutError";
}

/** The server answered a call with `{"type":"error"}`; `code` is one of protocol.md's error codes. */
export class ServerError extends WspushError {
    override name = "ServerError";
    constructor(
        readonly code: number,
        message: string,
    ) {
        super(message);
    }
}

/** The call cannot complete: the client was disconnected (by `disconnect()` or a final close). */
export class DisconnectedError extends WspushError {
    override name = "DisconnectedError";
}

/** A publish too large for the server's frame limit: sending it would make the server close with 1009. */
export class TooLargeError extends WspushError {
    override name = "TooLargeError";
}
