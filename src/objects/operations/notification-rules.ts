import type { NotificationRule } from '../events.js';
import type { ObjectStore } from '../object-store.js';

/** A bucket's notification rules, as stored with the bucket. */
export function rulesOf(objects: ObjectStore, bucket: string): NotificationRule[] {
  return parseRules(objects.configuration(bucket, 'notification'));
}

/** Replaces the bucket's rules by what `change` makes of the stored ones (read in the write's transaction); none removes them. */
export async function changeRules(objects: ObjectStore, bucket: string, change: (current: NotificationRule[]) => NotificationRule[]): Promise<NotificationRule[]> {
  let rules: NotificationRule[] = [];
  await objects.changeConfiguration(bucket, 'notification', (stored) => {
    rules = change(parseRules(stored));
    return rules.length ? JSON.stringify(rules) : undefined;
  });
  return rules;
}

function parseRules(stored: string | undefined): NotificationRule[] {
  return stored ? (JSON.parse(stored) as NotificationRule[]) : [];
}
