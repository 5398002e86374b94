// The objects thread (objects-thread.ts): the MD5 of large bodies and the share copies' file system
// calls, in one worker thread, as each thread is a V8 heap and a Node.js environment of ~6 MB.
import { answerRequests } from '../request-thread.js';
import { answerContentHash } from './content-hash-worker.js';
import { answerShareCopy } from './share-copy-worker.js';
import type { ObjectsThreadRequest } from './objects-thread.js';

answerRequests<ObjectsThreadRequest & { id: number }>((request) =>
  request.kind === 'copy' || request.kind === 'sync' ? answerShareCopy(request) : answerContentHash(request));
