import type { CloudConfig } from '../config.js';
import { S3Client, type S3Credentials } from './s3-client.js';

/** The two sides of an upload: the local object store (read through its S3 API) and the cloud store. */
export interface S3Endpoints {
  local: S3Client;
  cloud: S3Client;
}

export interface LocalS3 {
  endpoint: string;
  region: string;
  credentials: S3Credentials;
  /** s3.tls's certificate (PEM), when the local S3 API is https. */
  certificate?: string;
}

/** cloud.s3's key, else the standard environment variables (an IAM role's, say, through systemd's environment). */
function cloudCredentials(cloud: CloudConfig['s3'], env: NodeJS.ProcessEnv): S3Credentials {
  if (cloud.accessKeyId) return { accessKeyId: cloud.accessKeyId, secretAccessKey: cloud.secretAccessKey! };
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    return { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, sessionToken: env.AWS_SESSION_TOKEN };
  }
  throw new Error('no credentials for cloud S3: set cloud.s3.accessKeyId and secretAccessKey, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY');
}

/** Both clients, made on the first upload. */
export function connectS3(cloud: CloudConfig['s3'], local: LocalS3, env: NodeJS.ProcessEnv = process.env): S3Endpoints {
  return {
    local: new S3Client({ endpoint: local.endpoint, region: local.region, credentials: local.credentials, forcePathStyle: true, onlyCertificate: local.certificate, connections: cloud.concurrency + 1 }),
    cloud: new S3Client({ endpoint: cloud.endpoint, region: cloud.region, credentials: cloudCredentials(cloud, env), forcePathStyle: cloud.forcePathStyle, connections: cloud.concurrency + 1 }),
  };
}
