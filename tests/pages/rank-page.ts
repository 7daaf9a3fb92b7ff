// Test page for <rank-view>: a ranking made with the keyboard is saved to IndexedDB (transaction
// complete) before the next prompt shows; after a reload the count and the record are still there.
import { listRankings, openStore, saveRanking } from '../../src/store/db.ts';
import '../../src/ui/rank-view.ts';
import type { RankView } from '../../src/ui/rank-view.ts';
import { RankingState } from '../../src/ui/ranking-state.ts';

const prompts = [
  { prompt: 'Greet <b>Ana</b> <img src=x onerror="document.body.dataset.xss=1">', completions: ['Hi Ana!', 'Go away.', 'Hello Ana, lovely to see you today.'] },
  { prompt: 'Name a pet fish.', completions: ['Bubbles', 'Fish'] },
];
const store = await openStore('rank-view-test');
const view = document.querySelector('rank-view') as RankView;
const show = async () => {
  const saved = await listRankings(store);
  document.getElementById('count')!.textContent = `${saved.length} ranking${saved.length === 1 ? '' : 's'} saved`;
  document.body.dataset.saved = JSON.stringify(saved);
  const next = prompts[saved.length % prompts.length]!;
  view.state = new RankingState(next.prompt, next.completions);
  view.focus();
  document.body.dataset.ready = String(saved.length);
};
view.addEventListener('ranking-submit', async (e) => {
  document.body.dataset.ready = '';
  await saveRanking(store, e.detail); // typed by src/ui/events.ts's map
  await show();
});
await show();
