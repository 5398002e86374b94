import type { NotificationRule } from '../events.js';
import type { ObjectStore } from '../object-store.js';

/** A bucket's notification rules, as stored with the bucket. */
export function rulesOf(objects: ObjectStore, bucket: string): NotificationRule[] {
  const stored = objects.notification(bucket);
  return stored ? (JSON.parse(stored) as NotificationRule[]) : [];
}

/** Replaces the bucket's rules by what `change` makes of the stored ones (read in the write's transaction); none removes them. */
export function changeRules(objects: ObjectStore, bucket: string, change: (current: NotificationRule[]) => NotificationRule[]): Promise<NotificationRule[]> {
  return objects.changeNotification(bucket, (stored) => {
    const rules = change(stored ? (JSON.parse(stored) as NotificationRule[]) : []);
    return { configuration: rules.length ? JSON.stringify(rules) : undefined, result: rules };
  });
}
