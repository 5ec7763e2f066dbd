"""Interop helper for StackLab's ring tests: OpenStack Swift itself reads and writes ring files here.

  nodes RING_DIR RING_NAME PATHS_FILE SUFFIX   print "partition id,id,..." per path, via swift.common.ring.Ring
  save SPEC_JSON OUT_V1 OUT_V2                 write a RingData described by SPEC_JSON with Swift's own writer
"""
import array
import json
import sys

from swift.common import utils
from swift.common.ring import ring as ring_module
from swift.common.ring import RingData, Ring


def nodes(ring_dir, ring_name, paths_file, suffix):
    utils.HASH_PATH_PREFIX = b''
    utils.HASH_PATH_SUFFIX = suffix.encode()
    ring_module.validate_configuration = lambda: None
    ring = Ring(ring_dir, ring_name=ring_name)
    out = []
    with open(paths_file) as f:
        for line in f:
            account, container, obj = line.rstrip('\n').split('/')[1:4]
            part, devs = ring.get_nodes(account, container, obj)
            out.append('%d %s' % (part, ','.join(str(d['id']) for d in devs)))
    sys.stdout.write('\n'.join(out) + '\n')


def save(spec_file, out_v1, out_v2):
    with open(spec_file) as f:
        spec = json.load(f)
    table = [array.array('H', row) for row in spec['assignments']]
    for dev in spec['devs']:
        if dev is not None:
            dev['weight'] = float(dev['weight'])  # Swift's builder keeps weights as floats; JSON lost the ".0"
    data = RingData(table, spec['devs'], spec['part_shift'], version=spec.get('version'))
    if out_v1 != '-':
        data.save(out_v1, format_version=1)
    data.save(out_v2, format_version=2)


if __name__ == '__main__':
    {'nodes': nodes, 'save': save}[sys.argv[1]](*sys.argv[2:])
