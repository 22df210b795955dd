// A TCP forwarder to put between a client and the daemon, to break connections the way networks
// do: `freeze()` silently drops every byte of the current connections (no FIN, no RST, no close
// frame: what a dead NAT entry or a sleeping laptop looks like), `cut()` resets them. New
// connections are forwarded normally, unless `refuseNew(true)`: then they are reset at once (a
// network that stays down).
import { connect, createServer, type Server, type Socket } from "node:net";

interface Pair {
    client: Socket;
    upstream: Socket;
    frozen: boolean;
}

export class Forwarder {
    private pairs = new Set<Pair>();
    private refusing = false;
    private targetPort = 0;
    private constructor(
        private server: Server,
        readonly port: number,
    ) {}

    static start(targetPort: number): Promise<Forwarder> {
        return new Promise((resolve) => {
            let forwarder: Forwarder;
            const server = createServer((client) => {
                if (forwarder.refusing) return void client.on("error", () => {}).resetAndDestroy();
                const upstream = connect(forwarder.targetPort, "127.0.0.1");
                const pair: Pair = { client, upstream, frozen: false };
                forwarder.pairs.add(pair);
                client.on("data", (d) => pair.frozen || upstream.write(d));
                upstream.on("data", (d) => pair.frozen || client.write(d));
                const end = () => {
                    forwarder.pairs.delete(pair);
                    client.destroy();
                    upstream.destroy();
                };
                for (const s of [client, upstream]) s.on("error", end).on("close", () => pair.frozen || end());
            });
            server.listen(0, "127.0.0.1", () => {
                forwarder = new Forwarder(server, (server.address() as { port: number }).port);
                forwarder.targetPort = targetPort;
                resolve(forwarder);
            });
        });
    }

    get url(): string {
        return `ws://127.0.0.1:${this.port}/ws`;
    }

    freeze(): void {
        for (const pair of this.pairs) pair.frozen = true;
    }

    cut(): void {
        for (const pair of this.pairs) pair.client.resetAndDestroy(), pair.upstream.destroy();
        this.pairs.clear();
    }

    /** New connections go to `port` from now on: a load balancer that picks another node. */
    retarget(port: number): void {
        this.targetPort = port;
    }

    /** While on, new connections are reset before reaching the daemon. */
    refuseNew(on: boolean): void {
        this.refusing = on;
    }

    close(): void {
        for (const pair of this.pairs) pair.client.destroy(), pair.upstream.destroy();
        this.server.close();
    }
}
