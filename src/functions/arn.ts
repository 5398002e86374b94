// There is no AWS account or region on a gateway; ARNs and AWS_REGION say so.
export const REGION = 'local';
export const ACCOUNT = '000000000000';

/** A function's ARN, qualified (`:$LATEST`, `:3`, `:live`) when `qualifier` is given. */
export function functionArn(name: string, qualifier?: string): string {
  return `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}${qualifier ? `:${qualifier}` : ''}`;
}
