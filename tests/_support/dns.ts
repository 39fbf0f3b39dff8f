/**
 * A DNS server on loopback for the webhook suites (UDP, A and AAAA only), so that names can
 * resolve to whatever a test needs, private addresses included, through the very resolver the
 * functions use (`Deno.resolveDns` with `TORVUS_WEBHOOK_DNS_SERVER`). Nothing is ever sent to
 * the addresses it hands out: the functions refuse them before connecting.
 *
 * @module
 */
import dgram from "node:dgram";
import { Buffer } from "node:buffer";

/** The addresses of `name` for a query of `type`, given how many such queries came before. */
export type Zone = (name: string, type: "A" | "AAAA", asked: number) => string[];

/** A running server. */
export interface DnsServer {
  port: number;
  /** Queries answered, by `name type`. */
  queries: Map<string, number>;
  close(): Promise<void>;
}

function questionEnd(msg: Buffer): { name: string; end: number } {
  const labels: string[] = [];
  let at = 12;
  while (msg[at]! !== 0) {
    const length = msg[at]!;
    labels.push(msg.subarray(at + 1, at + 1 + length).toString("ascii"));
    at += 1 + length;
  }
  return { name: labels.join(".").toLowerCase(), end: at + 5 };
}

function record(type: "A" | "AAAA", address: string): Buffer {
  const data = type === "A" ? Buffer.from(address.split(".").map(Number)) : Buffer.from(
    address.split(":").flatMap((w) => [parseInt(w || "0", 16) >> 8, parseInt(w || "0", 16) & 255]),
  );
  const head = Buffer.alloc(12);
  head.writeUInt16BE(0xc00c, 0); // the question's name
  head.writeUInt16BE(type === "A" ? 1 : 28, 2);
  head.writeUInt16BE(1, 4); // IN
  head.writeUInt32BE(0, 6); // TTL 0: every lookup asks again
  head.writeUInt16BE(data.length, 10);
  return Buffer.concat([head, data]);
}

/** Starts a server on 127.0.0.1 answering from `zone` (IPv6 addresses written in full). */
export async function startDnsServer(zone: Zone): Promise<DnsServer> {
  const socket = dgram.createSocket("udp4");
  const queries = new Map<string, number>();
  socket.on("message", (msg: Buffer, peer: { address: string; port: number }) => {
    try {
      const { name, end } = questionEnd(msg);
      const qtype = msg.readUInt16BE(end - 4);
      const type = qtype === 1 ? "A" : qtype === 28 ? "AAAA" : undefined;
      const key = `${name} ${type ?? qtype}`;
      const asked = queries.get(key) ?? 0;
      queries.set(key, asked + 1);
      const answers = type ? zone(name, type, asked) : [];
      const head = Buffer.alloc(12);
      head.writeUInt16BE(msg.readUInt16BE(0), 0);
      head.writeUInt16BE(0x8180, 2); // a response, recursion available, no error
      head.writeUInt16BE(1, 4);
      head.writeUInt16BE(answers.length, 6);
      const reply = Buffer.concat([
        head,
        msg.subarray(12, end),
        ...answers.map((a) => record(type!, a)),
      ]);
      socket.send(reply, peer.port, peer.address);
    } catch {
      // Not a query this server understands: no answer.
    }
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return {
    port: socket.address().port,
    queries,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
