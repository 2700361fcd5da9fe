/**
 * React: `useSession(client)` is the client's snapshot as React state, through
 * `useSyncExternalStore`, so every component sees the same state in the same render, including
 * under concurrent rendering. The snapshot is immutable and replaced on each change.
 *
 *     const auth = new TokenClient();                     // once, outside components
 *     function Header() {
 *       const { status, user, offline } = useSession(auth);
 *       ...
 *     }
 */

import { useSyncExternalStore } from "react";

export function useSession(client) {
  // The server snapshot is the same "restoring" state: nothing is known before the cookie is tried.
  return useSyncExternalStore(client.subscribe, client.getSnapshot, client.getSnapshot);
}
