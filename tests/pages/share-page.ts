// Test page for <share-view> (driven by tests/share-browser.test.ts): the real AppContext around the
// training worker, the tiny GPT-2 loaded (with the fixture's tokenizer), and on the first visit some
// data and one short LoRA SFT run; then the view, bound to the Hub and OAuth client of the query string
// (?hub=<url>&client=<id>). The OAuth sign-in reloads this page; the run stays in IndexedDB.
// body.dataset: ready (the view is mounted), runId, notices (error notices), error.
import * as Comlink from 'comlink';
import { listRuns, openStore, saveRanking } from '../../src/store/db.ts';
import { AppContext } from '../../src/ui/context.ts';
import '../../src/ui/share-view.ts';
import type { Engine } from '../../src/worker/api.ts';

const ds = document.body.dataset;
const log = (line: string) => (document.getElementById('log')!.textContent += line + '\n');

async function main(): Promise<void> {
  const q = new URLSearchParams(location.search);
  const engine = Comlink.wrap<Engine>(new Worker(new URL('../../src/worker/worker.ts', import.meta.url), { type: 'module' }));
  const ctx = new AppContext(engine, await openStore()); // the worker's store
  const errors: string[] = [];
  ctx.on('notice', (n) => {
    log(`${n.kind}: ${n.text}`);
    if (n.kind !== 'error') return;
    errors.push(n.text);
    ds.notices = JSON.stringify(errors);
  });

  const tokenizer = new Uint8Array(await (await fetch('/tests/fixtures/gpt2-tiny/tokenizer.json')).arrayBuffer());
  ctx.model = await engine.loadModel({ url: '/models/gpt2-tiny/', files: new Map([['tokenizer.json', tokenizer]]) });
  ctx.changed('model', ctx.model);
  await ctx.refreshPolicy();

  let run = (await listRuns(ctx.store)).find((r) => r.status === 'done');
  if (!run) {
    await ctx.saveUserRecords(
      ['the cat', 'a dog', 'on the mat', 'the sun'].map((p, i) => ({ kind: 'completion' as const, prompt: p, completion: `sat ${i} ran` })),
    );
    await saveRanking(ctx.store, { prompt: 'the cat', completions: ['sat on the mat', 'ran away', 'the the'], ranks: [0, 1, 2] });
    const id = await ctx.startRun('sft', { seed: 1, steps: 2, batchSize: 2, seqLen: 16, lr: 1e-3, loraRank: 4 });
    log(`sft run ${id}: ${await engine.wait(id)}`);
    run = (await listRuns(ctx.store)).find((r) => r.id === id)!;
  }
  ds.runId = run.id;

  const view = document.createElement('share-view');
  view.hubUrl = q.get('hub') ?? '';
  view.clientId = q.get('client') ?? '';
  view.ctx = ctx;
  document.body.append(view);
  await view.updateComplete;
  ds.ready = '1';
}

main().catch((e: unknown) => {
  ds.error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  log(String(e));
});
