/**
 * Shadow errors with AWS's codes and messages, as the AWS IoT developer guide lists them under
 * "Device Shadow error messages". Over MQTT they become the `/rejected` document; over HTTP the
 * status and the same body.
 */
export class ShadowError extends Error {
  /** The request's clientToken, for a refusal of a request already parsed (its token readable). */
  clientToken?: string;

  constructor(readonly code: 400 | 401 | 403 | 404 | 409 | 413 | 415 | 429 | 500, message: string) {
    super(message);
    this.name = 'ShadowError';
  }
}

export const errors = {
  // The guide lists this error as "Invalid JSON"; the service's own text is this one.
  invalidJson: () => new ShadowError(400, 'Payload contains invalid json'),
  missingState: () => new ShadowError(400, 'Missing required node: state'),
  stateNotObject: () => new ShadowError(400, 'State node must be an object'),
  desiredNotObject: () => new ShadowError(400, 'Desired node must be an object'),
  reportedNotObject: () => new ShadowError(400, 'Reported node must be an object'),
  invalidVersion: () => new ShadowError(400, 'Invalid version'),
  invalidClientToken: () => new ShadowError(400, 'Invalid clientToken'),
  tooDeep: (maxDepth: number) => new ShadowError(400, `JSON contains too many levels of nesting; maximum is ${maxDepth}`),
  invalidNode: () => new ShadowError(400, 'State contains an invalid node'),
  // AWS names the node it refuses under `state`, quoted as in "No shadow exists with name: '…'"
  invalidStateNode: (node: string) => new ShadowError(400, `State contains an invalid node: '${node}'`),
  inexactInteger: (literal: string) => new ShadowError(400, `Integer ${literal} is out of range: beyond ±(2^53-1) it would not be stored exactly; send it as a string`),
  // Names outside AWS's length and character rules: the data plane answers these with 400 too.
  invalidThingName: () => new ShadowError(400, 'Invalid thing name'),
  invalidShadowName: () => new ShadowError(400, 'Invalid shadow name'),
  invalidPageSize: () => new ShadowError(400, 'Invalid pageSize'),
  invalidNextToken: () => new ShadowError(400, 'Invalid nextToken'),
  noSuchShadow: (name: string) => new ShadowError(404, `No shadow exists with name: '${name}'`),
  versionConflict: () => new ShadowError(409, 'Version conflict'),
  payloadTooLarge: () => new ShadowError(413, 'The payload exceeds the maximum size allowed'),
  // "documented" is AWS's own wording.
  notUtf8: () => new ShadowError(415, 'Unsupported documented encoding; supported encoding is UTF-8'),
  tooManyInFlight: () => new ShadowError(429, 'Too Many Requests'),
  internal: () => new ShadowError(500, 'Internal service failure'),
};

/** Any failure as a ShadowError: unexpected ones (a failed commit) are AWS's 500. */
export function asShadowError(error: unknown): ShadowError {
  return error instanceof ShadowError ? error : errors.internal();
}

/** The error response document: `code`, `message`, `timestamp` and the request's `clientToken`. */
export function errorDocument(error: ShadowError, timestamp: number, clientToken?: string): Record<string, unknown> {
  return { code: error.code, message: error.message, timestamp, ...(clientToken !== undefined ? { clientToken } : {}) };
}
