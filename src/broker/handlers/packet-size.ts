import type { Client } from 'aedes';

interface MqttPacketParser {
  packet: { length: number };
  _parseLength(): boolean;
  _emitError(error: Error): void;
}

/**
 * Refuses a packet as soon as its fixed header announces a length over the
 * limit — before the parser buffers its body — so one client cannot make the
 * broker hold a 256 MB packet. MQTT 3.1.1 has no error code for it: the
 * connection is closed (MQTT-4.8.0-1 style protocol violation handling).
 */
export function limitPacketSize(client: Client, maxPacketSize: number, onOversize: () => void): void {
  const parser = (client as unknown as { _parser: MqttPacketParser })._parser;
  const parseLength = parser._parseLength;
  parser._parseLength = function parseLengthWithinLimit(this: MqttPacketParser) {
    const complete = parseLength.call(this);
    if (complete && this.packet.length > maxPacketSize - fixedHeaderSize(this.packet.length)) {
      onOversize();
      this._emitError(new Error(`packet of ${this.packet.length} bytes exceeds the maximum packet size of ${maxPacketSize}`));
      return false;
    }
    return complete;
  };
}

/** One type byte plus the 1-4 byte remaining-length field (MQTT 3.1.1 section 2.2.3). */
function fixedHeaderSize(remainingLength: number): number {
  return 1 + (remainingLength < 128 ? 1 : remainingLength < 16384 ? 2 : remainingLength < 2097152 ? 3 : 4);
}
