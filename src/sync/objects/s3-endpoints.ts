import type { S3Client } from '@aws-sdk/client-s3';
import type { CloudConfig } from '../config.js';

export type S3Sdk = typeof import('@aws-sdk/client-s3');

/** The two sides of an upload: the local object store (read through its S3 API) and the cloud store. */
export interface S3Endpoints {
  sdk: S3Sdk;
  local: S3Client;
  cloud: S3Client;
}

export interface LocalS3 {
  endpoint: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
}

// Only what the requests themselves need: uploads are verified by ETag (MD5) here, and flexible
// checksums (aws-chunked bodies with trailers) are not understood by every S3-compatible store.
const PLAIN_REQUESTS = { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED', maxAttempts: 1 } as const;

/**
 * Loads the AWS SDK's S3 client (about 20 MB of heap and code: only once something is to be
 * uploaded) and makes both clients. The uploader retries on its own schedule, so the SDK does not.
 */
export async function connectS3(cloud: CloudConfig['s3'], local: LocalS3): Promise<S3Endpoints> {
  const sdk = await import('@aws-sdk/client-s3');
  const requestHandler = { connectionTimeout: 10_000, requestTimeout: 120_000 };
  return {
    sdk,
    local: new sdk.S3Client({ endpoint: local.endpoint, region: local.region, credentials: local.credentials, forcePathStyle: true, requestHandler, ...PLAIN_REQUESTS }),
    cloud: new sdk.S3Client({
      region: cloud.region,
      ...(cloud.endpoint ? { endpoint: cloud.endpoint } : {}),
      ...(cloud.accessKeyId ? { credentials: { accessKeyId: cloud.accessKeyId, secretAccessKey: cloud.secretAccessKey! } } : {}),
      forcePathStyle: cloud.forcePathStyle,
      requestHandler,
      ...PLAIN_REQUESTS,
    }),
  };
}
