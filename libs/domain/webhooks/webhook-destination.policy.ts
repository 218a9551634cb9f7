import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import ipaddr from 'ipaddr.js';
import { badRequest } from '#strata/common';
import { WebhooksErrorCode } from './webhooks.errors';

export const MAX_WEBHOOK_URL_LENGTH = 2048;

/** The destination resolves to (or is) an address webhooks may not reach. */
export class BlockedDestinationError extends Error {
  constructor(readonly host: string, readonly address: string, readonly range: string) {
    super(
      `webhook destination ${host} is ${address === host ? '' : `resolved to ${address}, `}a ${range} address; webhooks only reach ` +
        `public addresses (set WEBHOOKS_ALLOW_PRIVATE_NETWORKS=true to allow private networks, e.g. in development)`,
    );
    this.name = 'BlockedDestinationError';
  }
}

/**
 * ipaddr.js names the range of an address (loopback, private, linkLocal, uniqueLocal,
 * carrierGradeNat, multicast, 6to4, …) so no CIDR table is kept here; process() unwraps
 * IPv4-mapped IPv6 (::ffff:127.0.0.1 is loopback). Only plain public unicast passes: the tunnelling
 * ranges (6to4, Teredo, NAT64) are refused too, as they can embed a private IPv4 address.
 */
export function addressRange(address: string): string | undefined {
  if (!ipaddr.isValid(address)) return undefined;
  const parsed = ipaddr.process(address);
  const range = parsed.range();
  if (range !== 'unicast' || parsed.kind() !== 'ipv6') return range;
  // IPv6 ranges ipaddr.js files under plain unicast but that are not public: named here explicitly.
  const extra = EXTRA_IPV6_RANGES.find(([net]) => (parsed as ipaddr.IPv6).match(net));
  return extra ? extra[1] : range;
}

/**
 * `::/96` holds the deprecated IPv4-compatible addresses (`::7f00:1` is 127.0.0.1); the others are
 * special-purpose blocks (IANA IPv6 special registry) a webhook has no business reaching.
 */
const EXTRA_IPV6_RANGES: Array<[[ipaddr.IPv6, number], string]> = (
  [
    ['::/96', 'ipv4Compatible'],
    ['64:ff9b:1::/48', 'localNat64'],
    ['100::/64', 'discardOnly'],
    ['2001::/23', 'ietfProtocolAssignments'],
    ['fec0::/10', 'siteLocal'],
  ] as const
).map(([cidr, name]) => [ipaddr.IPv6.parseCIDR(cidr), name]);

export function isPublicAddress(address: string): boolean {
  return addressRange(address) === 'unicast';
}

/** Host of a URL without IPv6 brackets (`[::1]` → `::1`). */
const bareHost = (url: URL): string => url.hostname.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');

/**
 * What can be decided from the URL alone: `localhost` names and literal non-public IPs. (The WHATWG
 * parser has already normalised forms like `http://2130706433/` and `0x7f.1` to dotted IPv4.)
 * Host names are checked again, after DNS, on every delivery (publicOnlyLookup).
 */
export function literalDestinationProblem(url: URL): BlockedDestinationError | undefined {
  const host = bareHost(url).toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return new BlockedDestinationError(host, host, 'loopback');
  const range = addressRange(host);
  if (range !== undefined && range !== 'unicast') return new BlockedDestinationError(host, host, range);
  return undefined;
}

const invalidUrl = (why: string) => badRequest(WebhooksErrorCode.invalidWebhookUrl, why);

/** Registration-time URL rules; anything else is ApiException 400 `invalid_webhook_url`. Returns the normalised URL. */
export function parseWebhookUrl(raw: string, allowPrivateNetworks: boolean): string {
  if (raw.length > MAX_WEBHOOK_URL_LENGTH) throw invalidUrl(`url must be at most ${MAX_WEBHOOK_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalidUrl('url must be an absolute http:// or https:// URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw invalidUrl('url must use http or https');
  if (url.username || url.password) throw invalidUrl('url must not contain credentials (user:password@); authenticate the request with its signature');
  if (!url.hostname) throw invalidUrl('url must name a host');
  if (url.href.length > MAX_WEBHOOK_URL_LENGTH) throw invalidUrl(`url must be at most ${MAX_WEBHOOK_URL_LENGTH} characters once normalised`);
  if (!allowPrivateNetworks) {
    const blocked = literalDestinationProblem(url);
    if (blocked) throw invalidUrl(`url must point to a public address, not a ${blocked.range} one`);
  }
  return url.href;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * dns.lookup for the delivery sockets: resolves every address of the host and refuses the
 * connection when any of them is not public. Checked inside the connect, not before it, so a DNS
 * answer that changes between a check and the connect (rebinding) cannot slip a private address
 * through: the address checked is the address connected to.
 */
export function publicOnlyLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    const blocked = addresses.find((a) => !isPublicAddress(a.address));
    if (blocked) return callback(new BlockedDestinationError(hostname, blocked.address, addressRange(blocked.address) ?? 'unknown'), []);
    if (options.all) return callback(null, addresses);
    const [first] = addresses;
    return callback(null, first.address, first.family);
  });
}
