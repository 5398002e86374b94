/**
 * Full jitter: a wait drawn uniformly from [min, min(max, min·2ⁿ)] after the n-th failure in a row
 * (n ≥ 1). Already the first wait is spread over [min, 2·min]: gateways that lost the same broker
 * at the same moment do not all come back at the same moment.
 */
export function fullJitterMs(min: number, max: number, failuresInARow: number): number {
  const ceiling = Math.min(max, min * 2 ** Math.min(Math.max(1, failuresInARow), 30));
  return min + Math.random() * (ceiling - min);
}
