import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { AddressInfo } from 'net';
import { ChatDescriber, DescriptionRequest } from '../../../trainers/text/chatClient';
import { tempDir } from '../../helpers';

describe('chat endpoint client (local OpenAI-compatible server)', () => {
  let server: http.Server;
  let url: string;
  let dir: string;
  const hits = new Map<string, number>();

  before(async () => {
    dir = tempDir('chat');
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => {
        assert.equal(req.url, '/v1/chat/completions');
        const parsed = JSON.parse(body) as { model: string; messages: Array<{ role: string; content: string }> };
        const prompt = parsed.messages[1].content;
        const name = /"([^"]+)"/.exec(prompt)![1];
        const n = (hits.get(name) ?? 0) + 1;
        hits.set(name, n);
        const reply = (text: string) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content: text } }] })); };
        if (name.startsWith('busy') && n === 1) { res.writeHead(429, { 'retry-after': '0' }); res.end('slow down'); return; }
        if (name.startsWith('broken')) { res.writeHead(500); res.end('boom'); return; }
        if (name.startsWith('slow')) return; // never answers: the client must time out
        if (name.startsWith('forbidden')) { res.writeHead(403); res.end('no'); return; }
        reply(`${name} is described here (${parsed.model}).`);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });
  after(() => { server.closeAllConnections(); server.close(); fs.rmSync(dir, { recursive: true, force: true }); });

  const reqs: DescriptionRequest[] = [
    { key: '1', domain: 'condition', name: 'ok diabetes', vocabulary: 'SNOMED' },
    { key: '2', domain: 'drug', name: 'busy metformin', vocabulary: 'RxNorm' },
    { key: '3', domain: 'measurement', name: 'broken glucose', vocabulary: 'LOINC' },
    { key: '4', domain: 'procedure', name: 'slow biopsy', vocabulary: 'SNOMED' },
    { key: '5', domain: 'procedure', name: 'forbidden scan', vocabulary: 'SNOMED' },
  ];
  const opts = () => ({ endpoint: url, cacheFile: path.join(dir, 'cache.jsonl'), model: 'test-model', requestsPerSecond: 200, concurrency: 2, maxRetries: 2, timeoutMs: 1000, retryBaseMs: 10 });

  it('describes concepts, retries 429 and 500 and timeouts, and gives up with null', async () => {
    const d = new ChatDescriber(opts());
    const out = await d.describeAll(reqs);
    assert.equal(out.get('1'), 'ok diabetes is described here (test-model).');
    assert.equal(out.get('2'), 'busy metformin is described here (test-model).'); // after one 429
    assert.equal(hits.get('busy metformin'), 2);
    assert.equal(out.get('3'), null);
    assert.equal(hits.get('broken glucose'), 3); // 1 + maxRetries
    assert.equal(out.get('4'), null);
    assert.equal(hits.get('slow biopsy'), 3);
    assert.equal(out.get('5'), null);
    assert.equal(hits.get('forbidden scan'), 1); // a 403 is not retried
    assert.deepEqual(d.stats, { cached: 0, requested: 5, succeeded: 2, failed: 3, retries: 1 + 2 + 2 });
    assert.match(reqs.map((r) => d.promptFor(r)).join('\n'), /medical condition "ok diabetes"[\s\S]*drug "busy metformin"[\s\S]*clinical measurement[\s\S]*medical procedure/);
  });

  it('resumes from the cache: answered prompts are not requested again', async () => {
    // a run killed mid-write leaves a partial line at the end: it is ignored
    fs.appendFileSync(opts().cacheFile, '{"key":"9","mod');
    const before = new Map(hits);
    const d = new ChatDescriber({ ...opts(), maxRetries: 0 });
    const out = await d.describeAll(reqs.slice(0, 3));
    assert.equal(out.get('1'), 'ok diabetes is described here (test-model).');
    assert.equal(out.get('2'), 'busy metformin is described here (test-model).');
    assert.equal(hits.get('ok diabetes'), before.get('ok diabetes'));
    assert.equal(hits.get('busy metformin'), before.get('busy metformin'));
    assert.equal(hits.get('broken glucose'), before.get('broken glucose')! + 1); // failures are asked again
    assert.equal(d.stats.cached, 2);
    // another model is another cache key
    const other = new ChatDescriber({ ...opts(), model: 'other-model' });
    // the partial line was terminated: every other line of the cache is still valid JSON
    const lines = fs.readFileSync(opts().cacheFile, 'utf8').split('\n').filter((l) => l.trim());
    assert.equal(lines.filter((l) => { try { JSON.parse(l); return true; } catch { return false; } }).length, lines.length - 1);
    assert.equal((await other.describeAll(reqs.slice(0, 1))).get('1'), 'ok diabetes is described here (other-model).');
  });
});
