import { clientTokenOf, deleteDocument, type JsonObject } from '../document.js';
import { checkAddress, existingShadow, type OperationContext, type ShadowAddress } from './context.js';

/**
 * DeleteThingShadow: a soft delete that keeps the version for a re-created shadow to continue.
 * The request's content is ignored (AWS), but for a usable clientToken, which is echoed.
 */
export function deleteShadow(address: ShadowAddress, body: unknown, context: OperationContext): Promise<{ document: JsonObject; published: Promise<void> }> {
  checkAddress(address, context.limits);
  const clientToken = clientTokenOf(body, context.limits);
  // published in commit order, as updates are
  return context.commit.run(() => softDelete(address, clientToken, context), { singleStatement: true })
    .then((document) => ({ document, published: context.announce.deleted(address, document) }));
}

function softDelete(address: ShadowAddress, clientToken: string | undefined, context: OperationContext): JsonObject {
  const record = existingShadow(address, context);
  const now = context.now();
  context.shadows.softDelete(address.thing, address.name, now);
  return deleteDocument(record, now, clientToken);
}
