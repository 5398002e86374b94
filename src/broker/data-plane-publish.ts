import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { LocalBus } from '../bus.js';
import type { Router } from '../http/router.js';
import type { HttpHandler } from '../http/server.js';
import { BodyMemoryFullError } from '../http/body-memory.js';
import { BodyTooLargeError, DataPlaneAuthError, type DataPlaneAuth } from '../http/data-plane-auth.js';
import { hasUnsafeCharacter, isDaemonOnlyTopic, refusesRetained } from './topic.js';

// AWS IoT Core's limits: a message of at most 128 KB, a topic of at most 256 bytes.
const MAX_PAYLOAD_BYTES = 128 * 1024;
const MAX_TOPIC_BYTES = 256;

class PublishError extends Error {
  constructor(readonly status: number, readonly type: string, message: string) {
    super(message);
  }
}

/**
 * The AWS IoT data plane's Publish operation, so the AWS SDK's IoT Data Plane client (and functions
 * using it) can publish on the local bus: `POST /topics/{topic}?qos=0|1&retain=true|false`, the body
 * the payload. The topic comes URL-encoded (`sensors%2Ftemp`, as the SDKs send it) or with its levels
 * as path segments (`sensors/temp`, as a URL built by hand has it), empty levels kept. Answers 200 with an empty body once the bus took the message (for QoS 1, once every
 * durable subscriber, such as a function trigger, has committed it). A caller signing as a thing
 * is held to that thing's publish policy; the daemon's own topics (`$outpost/`, `$SYS/`, the shadow
 * service's answers) are open to no caller.
 */
export function registerDataPlanePublish(http: Router<HttpHandler>, bus: LocalBus, auth: DataPlaneAuth, log: Logger): void {
  http.add('POST', '/topics/:topic*', async (req, res, params, url) => {
    try {
      const message = { topic: checkTopic(params.topic), qos: qosOf(url.searchParams.get('qos')), retain: retainOf(url.searchParams.get('retain')) };
      if (message.retain && refusesRetained(message.topic)) throw invalid(`Invalid retain: a reserved topic (${message.topic}) takes no retained message`);
      const { caller, body: payload } = await auth.authenticate(req, MAX_PAYLOAD_BYTES);
      // not even for the daemon's own keys (the CLI's, the functions'): a function's bug must not forge a delta a device acts on
      if (isDaemonOnlyTopic(message.topic)) throw new DataPlaneAuthError(403, 'Forbidden');
      auth.requirePublish(caller, message.topic);
      await bus.publish({ ...message, payload });
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': 0 }).end();
    } catch (error) {
      const publishError = error instanceof PublishError ? error
        : error instanceof DataPlaneAuthError ? new PublishError(error.status, error.status === 401 ? 'UnauthorizedException' : 'ForbiddenException', error.message)
          : error instanceof BodyTooLargeError ? new PublishError(413, 'RequestEntityTooLargeException', `Payload larger than ${MAX_PAYLOAD_BYTES} bytes`)
            : error instanceof BodyMemoryFullError ? new PublishError(429, 'ThrottlingException', error.message)
              : new PublishError(500, 'InternalFailureException', 'Internal failure');
      if (publishError.status >= 500) log.error({ err: error, topic: params.topic }, 'data-plane publish failed');
      sendError(res, publishError);
    }
  });
}

/** A topic name, not a filter: no wildcards (MQTT-3.3.2-2), not empty, no unsafe character (as over MQTT), AWS's length limit. */
function checkTopic(topic: string): string {
  if (topic.length === 0) throw invalid('Invalid topic name: expected a topic, got an empty one');
  if (/[+#]/.test(topic)) throw invalid(`Invalid topic name: ${JSON.stringify(topic)}: expected a topic without + or # wildcards`);
  if (hasUnsafeCharacter(topic)) throw invalid(`Invalid topic name: ${JSON.stringify(topic)}: expected a topic without control characters or non-characters`);
  if (Buffer.byteLength(topic) > MAX_TOPIC_BYTES) throw invalid(`Invalid topic name: longer than ${MAX_TOPIC_BYTES} bytes`);
  return topic;
}

// AWS IoT: QoS 0 (the default) or 1; there is no QoS 2.
function qosOf(value: string | null): 0 | 1 {
  if (value === null || value === '0') return 0;
  if (value === '1') return 1;
  throw invalid(`Invalid qos: ${JSON.stringify(value)}: expected 0 or 1`);
}

function retainOf(value: string | null): boolean {
  if (value === null || value === 'false') return false;
  if (value === 'true') return true;
  throw invalid(`Invalid retain: ${JSON.stringify(value)}: expected true or false`);
}

function invalid(message: string): PublishError {
  return new PublishError(400, 'InvalidRequestException', message);
}

/** As the shadow routes: the exception name in x-amzn-ErrorType, the message in the body. */
function sendError(res: ServerResponse, error: PublishError): void {
  if (res.headersSent) return void res.destroy();
  const text = JSON.stringify({ message: error.message });
  res.writeHead(error.status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'x-amzn-ErrorType': error.type });
  res.end(text);
}
