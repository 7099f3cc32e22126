import t from 'tap';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { edgetlCacheDir } from '../../../src/node/util/cache-dir.js';

t.test('EDGETL_CACHE_DIR wins, then XDG_CACHE_HOME/edgetl, then ~/.cache/edgetl', async (t) => {
  t.equal(edgetlCacheDir({ EDGETL_CACHE_DIR: '/tmp/x', XDG_CACHE_HOME: '/tmp/y' }), '/tmp/x');
  t.equal(edgetlCacheDir({ EDGETL_CACHE_DIR: 'relative/cache' }), resolve('relative/cache'));
  t.equal(edgetlCacheDir({ XDG_CACHE_HOME: '/tmp/y' }), '/tmp/y/edgetl');
  t.equal(edgetlCacheDir({}), join(homedir(), '.cache', 'edgetl'));
  t.equal(
    edgetlCacheDir({ EDGETL_CACHE_DIR: '', XDG_CACHE_HOME: '' }),
    join(homedir(), '.cache', 'edgetl'),
    'empty values are ignored',
  );
});
