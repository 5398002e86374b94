import { z } from 'zod/v3';

/** `cloud.*`: the cloud MQTT broker and S3 store the sync agent delivers to. */
export const cloudSchema = z.strictObject({});

/** `sync.*`: the durable outbox and the rules of what flows to and from the cloud. */
export const syncSchema = z.strictObject({});
