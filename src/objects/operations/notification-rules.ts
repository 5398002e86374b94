import type { NotificationRule } from '../events.js';
import type { ObjectStore } from '../object-store.js';

/** A bucket's notification rules, as stored with the bucket. */
export function rulesOf(objects: ObjectStore, bucket: string): NotificationRule[] {
  const stored = objects.notification(bucket);
  return stored ? (JSON.parse(stored) as NotificationRule[]) : [];
}

/** Replaces the bucket's rules; none removes them. */
export function storeRules(objects: ObjectStore, bucket: string, rules: NotificationRule[]): Promise<void> {
  return objects.setNotification(bucket, rules.length ? JSON.stringify(rules) : undefined);
}
