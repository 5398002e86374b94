/**
 * MQTT topic-filter matching for retained look-ups, on a filter already split
 * into its levels. `+` matches one level, including an empty one (as aedes'
 * mqemitter is configured to); `#` matches the parent level and any below it
 * (MQTT 3.1.1 §4.7.1.2: "sport/#" matches "sport").
 */
export function topicMatches(filter: readonly string[], topic: string): boolean {
  // MQTT-4.7.2-1: a filter starting with a wildcard never matches a $-topic.
  if (topic.charCodeAt(0) === 36 && (filter[0] === '+' || filter[0] === '#')) return false;
  const levels = topic.split('/');
  for (let i = 0; i < filter.length; i++) {
    if (filter[i] === '#') return true;
    if (i >= levels.length || (filter[i] !== '+' && filter[i] !== levels[i])) return false;
  }
  return levels.length === filter.length;
}

/**
 * Where a filter's matches can be in the sorted list of topics: these `exact`
 * topics, plus — when `after` is set — every topic sorting strictly after it and
 * before `before` (unbounded when undefined). Candidates still need `topicMatches`.
 */
export interface TopicRange {
  exact: string[];
  after?: string;
  before?: string;
}

export function topicRange(filter: readonly string[]): TopicRange {
  const wildcardAt = filter.findIndex((level) => level === '+' || level === '#');
  if (wildcardAt === -1) return { exact: [filter.join('/')] };
  if (wildcardAt === 0) return { exact: [], after: '' };
  const parent = filter.slice(0, wildcardAt).join('/');
  const prefix = parent + '/';
  return {
    // `prefix` itself is a topic whose last level is empty; `parent` is matched by a trailing '#'.
    exact: filter[wildcardAt] === '#' ? [parent, prefix] : [prefix],
    after: prefix,
    // '0' is the character right after '/', so this bounds exactly the topics starting with `prefix`.
    before: parent + '0',
  };
}
