/** MQTT 3.1.1 topic filter matching (section 4.7). */

/** Does `filter` (which may hold `+` and `#`) match the concrete `topic`? */
export function topicMatches(filter: string, topic: string): boolean {
  return levelsMatch(filter.split('/'), topic);
}

/**
 * MQTT-4.7.2-1: a filter starting with a wildcard does not match topics starting with '$' (aedes'
 * matcher and the persistence's trie would match them). `filter` may be its first level only.
 */
export function wildcardSkipsTopic(filter: string, topic: string): boolean {
  return topic.charCodeAt(0) === 36 /* $ */ && (filter[0] === '+' || filter[0] === '#');
}

/**
 * `topicMatches` for a filter already split into levels. `+` matches one level,
 * an empty one included, as aedes' matcher does.
 */
export function levelsMatch(filterLevels: readonly string[], topic: string): boolean {
  if (wildcardSkipsTopic(filterLevels[0], topic)) return false;
  // Walks the topic in place rather than splitting it: this runs for every PUBLISH.
  let start = 0;
  for (let i = 0; i < filterLevels.length; i++) {
    const level = filterLevels[i];
    if (level === '#') return true; // MQTT-4.7.1-2: also matches the parent level
    if (start > topic.length) return false;
    let end = topic.indexOf('/', start);
    if (end === -1) end = topic.length;
    if (level !== '+' && (level.length !== end - start || !topic.startsWith(level, start))) return false;
    start = end + 1;
  }
  return start > topic.length;
}

/** Topic prefixes that only the daemon itself publishes to. */
const DAEMON_PREFIXES = ['$SYS/', '$outpost/'];
/**
 * The shadow service's answers and notices, which AWS IoT's reserved topics open to clients for
 * subscribing only: a client's publish there would be taken for the service's (a device acting on
 * a forged `/update/delta`).
 */
const SHADOW_RESPONSE = /^\$aws\/things\/[^/]+\/shadow\/(?:name\/[^/]+\/)?(?:get|update|delete)\/(?:accepted|rejected|delta|documents)$/;

/**
 * AWS IoT's reserved topics, which take no retained message: "You can't publish to a reserved topic
 * with the RETAIN flag set" (developer guide, MQTT retained messages). Kept, one would be replayed
 * to every later subscriber of a shadow topic as if just sent.
 */
export function refusesRetained(topic: string): boolean {
  return topic.startsWith('$aws/');
}

/** Whether only the daemon may publish on `topic`, whatever a client's policy says. */
export function isDaemonOnlyTopic(topic: string): boolean {
  return DAEMON_PREFIXES.some((prefix) => topic.startsWith(prefix)) || SHADOW_RESPONSE.test(topic);
}

/** Is every topic that `requested` can match also matched by `allowed`? Used to authorise SUBSCRIBE filters. */
export function filterCovers(allowed: string, requested: string): boolean {
  // A filter starting with a wildcard never reaches '$' topics, so it cannot grant a '$' subscription.
  if (requested.startsWith('$') && (allowed.startsWith('#') || allowed.startsWith('+'))) return false;
  const allowedLevels = allowed.split('/');
  const requestedLevels = requested.split('/');
  for (let i = 0; i < allowedLevels.length; i++) {
    const level = allowedLevels[i];
    if (level === '#') return true;
    if (i >= requestedLevels.length) return false;
    const wanted = requestedLevels[i];
    if (wanted === '#') return false;
    if (level === '+') continue;
    if (wanted === '+' || wanted !== level) return false;
  }
  return allowedLevels.length === requestedLevels.length;
}

/**
 * Code points no topic or filter may hold here, as Mosquitto refuses them: control characters and
 * non-characters, which a receiver "MAY" close the connection on (MQTT-1.5.3). libmosquitto clients
 * do close it, so one retained message on such a topic would throw every such subscriber of a
 * matching filter off at each connect, and the cloud link's broker too. (U+0000 is refused by
 * MQTT-1.5.3-2 itself.)
 */
export const UNSAFE_CODE_POINT_RANGES: ReadonlyArray<readonly [number, number]> = [
  [0x01, 0x1f], [0x7f, 0x9f], [0xfdd0, 0xfdef],
  // U+FFFE and U+FFFF of every plane
  ...Array.from({ length: 17 }, (_, plane) => [plane * 0x10000 + 0xfffe, plane * 0x10000 + 0xffff] as const),
];
const UNSAFE_CHARACTER = new RegExp(`[\\u0000${UNSAFE_CODE_POINT_RANGES.map(([first, last]) => `\\u{${first.toString(16)}}-\\u{${last.toString(16)}}`).join('')}]`, 'u');

/** Whether `text` holds U+0000, a control character or a non-character (UNSAFE_CODE_POINT_RANGES). */
export function hasUnsafeCharacter(text: string): boolean {
  return UNSAFE_CHARACTER.test(text);
}

/** MQTT-4.7.3-1: at least one character; MQTT-3.3.2-2: no wildcards (a will's topic is published as one); no unsafe character. */
export function isValidTopicName(topic: string): boolean {
  return topic.length > 0 && !topic.includes('+') && !topic.includes('#') && !hasUnsafeCharacter(topic);
}

/** MQTT-4.7.1: '#' only as the whole last level, '+' only as a whole level; no empty filter, no unsafe character. */
export function isValidFilter(filter: string): boolean {
  if (filter.length === 0 || hasUnsafeCharacter(filter)) return false;
  const levels = filter.split('/');
  return levels.every((level, i) =>
    (level === '#' && i === levels.length - 1) || level === '+' || (!level.includes('#') && !level.includes('+')));
}
