// Test page for <pair-view> and <guidelines-panel>: each verdict is saved to IndexedDB (checked by the
// store's rules) before the next pair shows; a better answer written for "both bad" is kept as the
// demonstration it would become; skips are counted. The sides alternate (B first, then A first) so both
// orders are judged.
import { listRankings, openStore, saveRanking } from '../../src/store/db.ts';
import '../../src/ui/guidelines-panel.ts';
import '../../src/ui/pair-view.ts';
import type { PairView } from '../../src/ui/pair-view.ts';
import { PairState } from '../../src/ui/pair-state.ts';

const pairs = [
  { prompt: 'Greet <b>Ana</b> <img src=x onerror="document.body.dataset.xss=1">', completions: ['Hi Ana!', 'Go away.'] },
  { prompt: 'Name a pet fish.', completions: ['Fish', 'Rock'] },
  { prompt: 'Say hi.', completions: ['Hi', 'Hello'] },
  { prompt: 'Thank Omar.', completions: ['No.', 'Whatever.'] },
  { prompt: 'Skip me.', completions: ['x', 'y'] },
];
const store = await openStore('pair-view-test');
const view = document.querySelector('pair-view') as PairView;
const demos: string[] = [];
let skips = 0;
const show = async () => {
  const saved = await listRankings(store);
  document.body.dataset.saved = JSON.stringify(saved);
  const next = pairs[(saved.length + skips) % pairs.length]!;
  view.state = PairState.drawn(next.prompt, next.completions, () => ((saved.length + skips) % 2 ? 0.1 : 0.9));
  view.focus();
  document.body.dataset.ready = `${saved.length}/${skips}`;
};
view.addEventListener('pair-submit', async (e) => {
  document.body.dataset.ready = '';
  const { record, demonstration } = e.detail; // typed by src/ui/events.ts's map
  await saveRanking(store, record);
  if (demonstration !== undefined) demos.push(demonstration);
  document.body.dataset.demos = JSON.stringify(demos);
  await show();
});
view.addEventListener('ranking-skip', () => {
  skips++;
  void show();
});
await show();
