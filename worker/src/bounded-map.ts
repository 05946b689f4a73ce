/**
 * Sets `key` as the newest entry of `map` and, once the map holds more than
 * `max` entries, drops the oldest: the memory bound of the isolate's caches,
 * so requests for many distinct names or ids cannot grow them without limit.
 */
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) {
    const oldest = map.keys().next();
    if (!oldest.done) map.delete(oldest.value);
  }
}
