import type { Aedes, Client } from 'aedes';

interface Registry {
  clients: Record<string, Client | undefined>;
  registerClient(client: Client): void;
  unregisterClient(client: Client): void;
  _finishRegisterClient(client: Client): void;
}

type Closable = Client & { closed: boolean; close(done?: () => void): void };

/**
 * MQTT-3.1.4-2: a CONNECT with the client id of a connected client closes that client. aedes closes
 * it and registers the newcomer once the close is done; a third CONNECT arriving meanwhile found the
 * closing client still registered, was registered at once, and then lost its entry to the closing
 * client's unregistering, so the second one took the id too and the third stayed connected unseen:
 * two connections with one id, both served, the hidden one never closed by the next takeover. A
 * client closed while it waited for its turn was registered all the same.
 *
 * Here the takeovers of one client id happen one after the other, each closing whoever holds the id
 * when its turn comes; a newcomer already gone by then is not registered, and a client leaves the
 * registry only if it is the one registered under its id.
 */
export function takeOverClientIdsInTurn(broker: Aedes): void {
  const registry = broker as unknown as Registry;
  const turns = new Map<string, Promise<void>>();
  registry.registerClient = (client) => {
    // most CONNECTs take a free id: registered at once, as aedes does, before their CONNACK
    if (!turns.has(client.id) && registry.clients[client.id] === undefined) return registry._finishRegisterClient(client);
    const turn = (turns.get(client.id) ?? Promise.resolve()).then(() => takeOver(registry, client as Closable));
    turns.set(client.id, turn);
    void turn.then(() => {
      if (turns.get(client.id) === turn) turns.delete(client.id);
    });
  };
  const unregisterClient = registry.unregisterClient;
  registry.unregisterClient = function unregisterIfRegistered(this: Registry, client: Client) {
    if (this.clients[client.id] === client) unregisterClient.call(this, client);
  };
}

function takeOver(registry: Registry, client: Closable): Promise<void> {
  return new Promise((resolve) => {
    const register = () => {
      if (!client.closed) registry._finishRegisterClient(client);
      resolve();
    };
    const holder = registry.clients[client.id] as Closable | undefined;
    if (holder && holder !== client) holder.close(register);
    else register();
  });
}
