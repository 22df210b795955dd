// Entry of the browser bundle (dist/wspush.min.js): `<script src="wspush.min.js">` defines the
// global `Wspush`, the client class, carrying the rest of the API as static members
// (`Wspush.TimeoutError`, `Wspush.miniProgramTransport`, …).
import * as api from "./index.js";
import { root } from "./root.js";

root.Wspush = Object.assign(api.Wspush, api);
