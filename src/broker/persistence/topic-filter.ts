/**
 * Where a filter's matches can be in the sorted list of topics: these `exact`
 * topics, plus — when `after` is set — every topic sorting strictly after it and
 * before `before` (unbounded when undefined). Candidates still need `levelsMatch`.
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
