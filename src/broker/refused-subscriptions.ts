// aedes hands persistence.addSubscriptions every filter of a SUBSCRIBE, the refused ones too (its
// storeSubscriptions passes the whole packet's list for each granted filter, possibly before the
// later filters are authorized): a persistent session would then keep, and be sent after a
// reconnect, messages on a filter it was answered 0x80 for. authorizeSubscribe marks what it
// refuses; the store looks at the marks when it commits, once the whole packet was authorized.
const refused = new WeakSet<object>();

export function markRefused(subscription: object): void {
  refused.add(subscription);
}

export function wasRefused(subscription: object): boolean {
  return refused.has(subscription);
}
