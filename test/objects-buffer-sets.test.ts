import { describe, expect, it } from 'vitest';
import { BufferSets, SLAB_BYTES } from '../src/objects/buffer-sets.js';

const overflowSet = () => [Buffer.alloc(16)];

describe('buffer sets for large bodies', () => {
  it('cuts sets of either shape from the same kept slabs: an upload after a download takes no new memory', () => {
    const downloads = new BufferSets(2, 3, SLAB_BYTES, overflowSet);
    const uploads = new BufferSets(4, 4, SLAB_BYTES / 4, overflowSet);
    const download = downloads.lend();
    const slabs = new Set(download.buffers.map((buffer) => buffer.buffer));
    expect(slabs.size).toBe(3);
    download.giveBack();

    const upload = uploads.lend();
    expect(upload.buffers).toHaveLength(4);
    expect(upload.buffers.every((buffer) => buffer.length === SLAB_BYTES / 4)).toBe(true);
    // one slab, cut in four buffers that do not overlap, taken from the download's
    expect(new Set(upload.buffers.map((buffer) => buffer.buffer)).size).toBe(1);
    expect(slabs.has(upload.buffers[0].buffer)).toBe(true);
    expect(upload.buffers.map((buffer) => buffer.byteOffset)).toEqual([0, 1, 2, 3].map((i) => (i * SLAB_BYTES) / 4));
    upload.giveBack();
  });

  it('lends beyond its pooled sets from the overflow, which it does not keep', () => {
    const sets = new BufferSets(1, 2, SLAB_BYTES / 2, overflowSet);
    const pooled = sets.lend();
    const beyond = sets.lend();
    expect(beyond.buffers).toHaveLength(1);
    expect(beyond.buffers[0].length).toBe(16);
    beyond.giveBack();
    pooled.giveBack();
    // the pooled slab is lent again, not the overflow's memory
    const again = sets.lend();
    expect(again.buffers[0].buffer).toBe(pooled.buffers[0].buffer);
    again.giveBack();
  });

  it('refuses buffers that do not divide a slab', () => {
    expect(() => new BufferSets(1, 2, 3 * 1024 * 100, overflowSet)).toThrow(/do not divide a slab/);
    expect(() => new BufferSets(1, 2, 2 * SLAB_BYTES, overflowSet)).toThrow(/do not divide a slab/);
  });
});
