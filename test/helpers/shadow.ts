import type { MqttClient } from 'mqtt';
import { connectClient } from './mqtt.js';

export interface ShadowResponse {
  topic: string;
  outcome: 'accepted' | 'rejected';
  body: any;
}

let tokens = 0;

/**
 * A thing's view of the shadow topics over mqtt.js: subscribes to a shadow's responses and
 * matches each request to its answer by clientToken, bounded by a timeout.
 */
export class ShadowMqttClient {
  private readonly waiting = new Map<string, (response: ShadowResponse) => void>();
  readonly events: Array<{ topic: string; body: any }> = [];

  private constructor(readonly client: MqttClient) {
    client.on('message', (topic, payload) => {
      let body: any;
      try { body = JSON.parse(payload.toString()); } catch { body = payload.toString(); }
      const outcome = topic.endsWith('/accepted') ? 'accepted' : topic.endsWith('/rejected') ? 'rejected' : undefined;
      const resolve = outcome && typeof body?.clientToken === 'string' ? this.waiting.get(body.clientToken) : undefined;
      if (resolve) {
        this.waiting.delete(body.clientToken);
        resolve({ topic, outcome: outcome!, body });
      } else {
        this.events.push({ topic, body });
      }
    });
  }

  static async connect(url: string, options: Parameters<typeof connectClient>[1], subscriptions: string[]): Promise<ShadowMqttClient> {
    const client = await connectClient(url, options);
    if (subscriptions.length) await client.subscribeAsync(subscriptions, { qos: 1 });
    return new ShadowMqttClient(client);
  }

  /** Publishes `body` (with a fresh clientToken unless it has one) and resolves with the matching answer. */
  request(topic: string, body: Record<string, unknown> = {}, timeoutMs = 5000): Promise<ShadowResponse> {
    const clientToken = (body.clientToken as string | undefined) ?? `t-${++tokens}`;
    return this.requestRaw(topic, JSON.stringify({ ...body, clientToken }), clientToken, timeoutMs);
  }

  /** Publishes raw bytes; the answer is matched by `clientToken` (absent from hostile payloads: then by topic). */
  requestRaw(topic: string, payload: string | Buffer, clientToken: string, timeoutMs = 5000): Promise<ShadowResponse> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(clientToken);
        reject(new Error(`no answer to ${topic} (${clientToken}) in ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(clientToken, (response) => {
        clearTimeout(timer);
        resolve(response);
      });
      this.client.publish(topic, payload, { qos: 1 });
    });
  }

  /** The next event (a message without a pending request) on `topic`, bounded by a timeout. */
  async nextEvent(topic: string, timeoutMs = 5000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const index = this.events.findIndex((event) => event.topic === topic);
      if (index >= 0) return this.events.splice(index, 1)[0].body;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error(`no message on ${topic} in ${timeoutMs} ms; got ${JSON.stringify(this.events.map((event) => event.topic))}`);
  }

  end(): void {
    this.client.end(true);
  }
}

export async function http(port: number, method: string, path: string, body?: string | Buffer): Promise<{ status: number; body: any; headers: Headers }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { method, body, signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  let parsed: any;
  try { parsed = JSON.parse(text); } catch { parsed = text; }
  return { status: response.status, body: parsed, headers: response.headers };
}
