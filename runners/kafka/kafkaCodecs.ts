// Kafka record-batch compression codecs kafkajs lacks: it ships only gzip. LZ4 (Kafka's
// compression type 3, the LZ4 frame format since message format v1) uses our frame codec, so
// `medrep produce` can send the input topics LZ4-compressed (several times cheaper than gzip in
// both directions) and the stream reads LZ4 batches of foreign producers (librdkafka, Java).
import { CompressionCodecs, CompressionTypes } from 'kafkajs';
import { lz4FrameCompress, lz4FrameDecompress } from './lz4Frame';

const lz4Codec = () => ({
  async compress(encoder: { buffer: Buffer }): Promise<Buffer> {
    const frame = lz4FrameCompress(encoder.buffer);
    return Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  },
  async decompress(buffer: Buffer): Promise<Buffer> {
    const content = lz4FrameDecompress(buffer);
    return Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  },
});

/** Registers the codecs with kafkajs (process-wide; idempotent). */
export function registerKafkaCodecs(): void {
  CompressionCodecs[CompressionTypes.LZ4] = lz4Codec;
}
