// Types for the part of qlobber 8's aedes subscription trie that the persistence uses.
declare module 'qlobber/aedes/qlobber-sub.js' {
  interface QlobberSubOptions {
    separator?: string;
    wildcard_one?: string;
    wildcard_some?: string;
    match_empty_levels?: boolean;
  }

  export interface TrieSubscription {
    clientId: string;
    topic: string;
    qos: number;
    rh?: number;
    rap?: boolean;
    nl?: boolean;
  }

  class QlobberSub {
    constructor(options?: QlobberSubOptions);
    /** Distinct (client, topic filter) pairs in the trie. */
    readonly subscriptionsCount: number;
    /** Adds the subscription, replacing the client's earlier one to the same filter. */
    add(topic: string, subscription: TrieSubscription): this;
    remove(topic: string, subscription: Pick<TrieSubscription, 'clientId' | 'topic'>): this;
    match(topic: string): TrieSubscription[];
    clear(): this;
  }

  export default QlobberSub;
}
