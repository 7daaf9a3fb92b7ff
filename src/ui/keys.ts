// Keyboard-first views (ranking, blind votes) take keys on their own element: focusable, and listening
// only while in the page. One controller so every such view behaves alike.
import type { ReactiveController, ReactiveControllerHost } from 'lit';

export class KeyController implements ReactiveController {
  constructor(
    private readonly host: ReactiveControllerHost & HTMLElement,
    private readonly onKey: (e: KeyboardEvent) => void,
  ) {
    host.addController(this);
  }

  hostConnected(): void {
    this.host.tabIndex = 0;
    this.host.addEventListener('keydown', this.onKey);
  }

  hostDisconnected(): void {
    this.host.removeEventListener('keydown', this.onKey);
  }
}
