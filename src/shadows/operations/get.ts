import { getDocument, parseStored, parseTokenRequest, type JsonObject } from '../document.js';
import { checkAddress, existingShadow, type OperationContext, type ShadowAddress } from './context.js';

/** GetThingShadow: the full document with its delta, or 404. */
export function getShadow(address: ShadowAddress, body: unknown, context: OperationContext): Promise<JsonObject> {
  checkAddress(address, context.limits);
  const request = parseTokenRequest(body, context.limits);
  // Read inside group commit, so a get queued behind an update of the same tick sees it.
  return context.commit.run(() => readDocument(address, request.clientToken, context), { singleStatement: true });
}

function readDocument(address: ShadowAddress, clientToken: string | undefined, context: OperationContext): JsonObject {
  return getDocument(parseStored(existingShadow(address, context)), context.now(), clientToken);
}
