// The look every view shares: one set of colours, spacing and controls (Lit adopts it per shadow root).
import { css } from 'lit';

export const sharedStyles = css`
  :host([hidden]) { display: none; }
  /* a clear ring on whatever the keyboard reaches (the browser's default is faint or, on a view's host, none) */
  :focus-visible { outline: 2px solid #0a66c2; outline-offset: 2px; }
  :host(:focus-visible) { outline: 2px solid #0a66c2; outline-offset: 4px; border-radius: 6px; }
  :host { display: block; color: var(--fg, #1d1d1f); font: 15px/1.5 system-ui, -apple-system, 'Segoe UI', sans-serif; }
  h2 { font-size: 1.15rem; margin: 0 0 0.75rem; }
  h3 { font-size: 1rem; margin: 1.25rem 0 0.5rem; }
  .card > h3:first-child { margin-top: 0; }
  p { margin: 0.4rem 0; }
  .muted { color: #6e6e73; }
  .small { font-size: 0.85em; }
  .error { color: #b42318; }
  .ok { color: #1a7f37; }
  .card { background: #fff; border: 1px solid #e3e3e8; border-radius: 10px; padding: 0.9rem 1rem; margin: 0.75rem 0; }
  .row { display: flex; gap: 0.6rem; align-items: center; flex-wrap: wrap; }
  .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(15rem, 1fr)); gap: 0.75rem; }
  button { font: inherit; padding: 0.35rem 0.85rem; border-radius: 7px; border: 1px solid #c7c7cf; background: #f6f6f8; cursor: pointer; }
  button:hover:not(:disabled) { background: #ececf1; }
  button.primary { background: #0a66c2; border-color: #0a66c2; color: #fff; }
  button.primary:hover:not(:disabled) { background: #0957a6; }
  button.danger { color: #b42318; }
  button:disabled { opacity: 0.5; cursor: default; }
  input[type='text'], input[type='number'], input[type='url'], input[type='password'], input:not([type]), select, textarea {
    font: inherit; padding: 0.3rem 0.5rem; border: 1px solid #c7c7cf; border-radius: 6px; background: #fff; box-sizing: border-box;
  }
  textarea { width: 100%; min-height: 4.5rem; resize: vertical; }
  label { display: block; }
  progress { width: 100%; height: 0.8rem; }
  table { border-collapse: collapse; width: 100%; }
  td, th { text-align: left; padding: 0.3rem 0.5rem; border-bottom: 1px solid #ececf1; vertical-align: top; }
  th { font-weight: 600; color: #48484a; }
  .pre { white-space: pre-wrap; word-break: break-word; }
  .pill { display: inline-block; padding: 0 0.5rem; border-radius: 999px; background: #eef3fb; color: #0a66c2; font-size: 0.8em; }
  /* one size for the buttons of a row (Edit, Delete, Show, ...) wherever a list has them */
  td button, .actions button { padding: 0.15rem 0.55rem; font-size: 0.85em; }
  .empty { color: #6e6e73; padding: 1rem; text-align: center; border: 1px dashed #d0d0d7; border-radius: 10px; }
`;
