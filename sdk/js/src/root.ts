/**
 * The global object. `globalThis` is missing from older JavaScriptCore (iOS < 12.2, which WeChat
 * used), where reading it throws a ReferenceError.
 */
export const root: any =
    typeof globalThis != "undefined" ? globalThis : typeof self != "undefined" ? self : typeof window != "undefined" ? window : {};
