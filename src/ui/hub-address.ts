// Which Hugging Face Hub the page talks to: huggingface.co, a mirror (where huggingface.co is slow or
// blocked), or a company's own Hub. One setting for loading (Model tab) and publishing (Share tab), kept
// in localStorage; a build can change the default with VITE_HF_ENDPOINT.
import { hubEndpoint } from '../io/hub-publish.ts';

const KEY = 'rlhf-playground:hub-url';

/** The Hub this build talks to unless the user chose another. */
export function defaultHubAddress(): string {
  const env = import.meta.env as Record<string, string | undefined> | undefined;
  return hubEndpoint(env?.VITE_HF_ENDPOINT);
}

export function hubAddress(): string {
  try {
    return hubEndpoint(localStorage.getItem(KEY) || defaultHubAddress());
  } catch {
    return defaultHubAddress(); // a stored value that is no URL any more (edited by hand): the default
  }
}

/** Checks and keeps `url` (HubPublishError when it is not an http(s) URL); the default is stored as no choice. */
export function setHubAddress(url: string): string {
  const address = hubEndpoint(url || defaultHubAddress());
  if (address === defaultHubAddress()) localStorage.removeItem(KEY);
  else localStorage.setItem(KEY, address);
  return address;
}
