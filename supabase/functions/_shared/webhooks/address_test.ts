import assert from "node:assert/strict";
import { isLocalhostName, refusedAddress } from "./address.ts";
import { refusedUrl } from "./target.ts";

Deno.test("refusedAddress() allows public unicast addresses only", () => {
  for (
    const ok of ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450::1"]
  ) {
    assert.equal(refusedAddress(ok, false), undefined, ok);
  }
});

Deno.test("refusedAddress() refuses private, loopback, link-local, metadata and special ranges", () => {
  const cases: Array<[string, RegExp]> = [
    ["10.0.0.1", /private/],
    ["172.16.5.4", /private/],
    ["172.31.255.255", /private/],
    ["192.168.1.1", /private/],
    ["127.0.0.1", /loopback/],
    ["127.255.0.9", /loopback/],
    ["::1", /loopback/],
    ["169.254.169.254", /link-local/], // AWS, GCP, Azure metadata
    ["169.254.170.2", /link-local/], // ECS task metadata
    ["fe80::1", /link-local/],
    ["fd00:ec2::254", /unique local/], // AWS metadata over IPv6
    ["100.100.100.200", /carrier-grade/], // Alibaba metadata
    ["100.64.0.1", /carrier-grade/],
    ["0.0.0.0", /unspecified/],
    ["::", /unspecified/],
    ["255.255.255.255", /broadcast/],
    ["224.0.0.1", /multicast/],
    ["ff02::1", /multicast/],
    ["192.0.0.192", /reserved/],
    ["198.18.0.1", /reserved/],
    ["240.0.0.1", /reserved/],
    ["192.0.2.1", /reserved/],
    ["2001:db8::1", /reserved/],
    ["64:ff9b::a00:1", /reserved/], // NAT64 of 10.0.0.1
    ["2002:a00:1::", /reserved/], // 6to4 of 10.0.0.1
    ["::7f00:1", /reserved/], // IPv4-compatible 127.0.0.1
    ["fc00::1", /unique local/],
  ];
  for (const [address, why] of cases) {
    const refused = refusedAddress(address, false);
    assert.match(refused ?? "(allowed)", why, address);
  }
});

Deno.test("refusedAddress() judges IPv4-mapped IPv6 addresses as the IPv4 address they are", () => {
  assert.equal(refusedAddress("::ffff:10.0.0.1", false), "10.0.0.1, a private address");
  assert.equal(refusedAddress("[::ffff:7f00:1]", false), "127.0.0.1, a loopback address");
  assert.equal(refusedAddress("::ffff:8.8.8.8", false), undefined);
});

Deno.test("refusedAddress() allows loopback only when told, and nothing else with it", () => {
  assert.equal(refusedAddress("127.0.0.1", true), undefined);
  assert.equal(refusedAddress("::1", true), undefined);
  assert.match(refusedAddress("10.0.0.1", true)!, /private/);
  assert.match(refusedAddress("169.254.169.254", true)!, /link-local/);
});

Deno.test("isLocalhostName() knows localhost and *.localhost, any case, with a final dot", () => {
  for (const n of ["localhost", "LOCALHOST", "localhost.", "api.localhost", "a.b.localhost"]) {
    assert.ok(isLocalhostName(n), n);
  }
  for (const n of ["localhost.example.com", "mylocalhost", "example.com"]) {
    assert.ok(!isLocalhostName(n), n);
  }
});

Deno.test("refusedUrl() wants https for live endpoints and no credentials, fragment or bad host", () => {
  const policy = { allowLoopback: false };
  const cases: Array<[url: string, mode: "live" | "test", refused: string | undefined]> = [
    ["https://hooks.example.com/x?y=1", "live", undefined],
    ["http://hooks.example.com/x", "test", undefined],
    ["http://hooks.example.com/x", "live", "must use https for a live endpoint"],
    ["ftp://hooks.example.com/", "test", "must be an http(s) URL"],
    ["hooks.example.com", "test", "must be an absolute URL"],
    ["https://a:b@hooks.example.com/", "live", "must not contain credentials"],
    ["https://hooks.example.com/#x", "live", "must not have a fragment"],
    [
      "https://169.254.169.254/latest",
      "live",
      "cannot be delivered to 169.254.169.254, a link-local address (cloud metadata services answer there)",
    ],
    [
      "https://[::ffff:192.168.0.1]/",
      "live",
      "cannot be delivered to 192.168.0.1, a private address",
    ],
    // The URL parser's canonical form of odd IPv4 spellings is judged.
    ["https://0x7f000001/", "live", "cannot be delivered to 127.0.0.1, a loopback address"],
    ["http://localhost:3000/", "test", "cannot be delivered to localhost, a loopback name"],
  ];
  for (const [url, mode, refused] of cases) {
    assert.equal(refusedUrl(url, mode, policy), refused, url);
  }
  assert.equal(refusedUrl("http://localhost:3000/", "test", { allowLoopback: true }), undefined);
});
