import { GATEWAY_ACCOUNT, GATEWAY_REGION } from '../gateway-identity.js';

/** A function's ARN, qualified (`:$LATEST`, `:3`, `:live`) when `qualifier` is given. */
export function functionArn(name: string, qualifier?: string): string {
  return `arn:aws:lambda:${GATEWAY_REGION}:${GATEWAY_ACCOUNT}:function:${name}${qualifier ? `:${qualifier}` : ''}`;
}
