// There is no AWS account or region on a gateway, and its names say so, as LocalStack's and SAM
// local's do: every local ARN, the account that owns every bucket and object, the AWS_REGION of
// every function environment (whose SDKs sign for it, which the S3 API takes beside s3.region).
export const GATEWAY_REGION = 'local';
export const GATEWAY_ACCOUNT = '000000000000';
