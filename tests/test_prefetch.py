import numpy as np

from masktwins3d.data.prefetch import Prefetcher


def _source(seed=0):
    rng = np.random.default_rng(seed)
    return rng, Prefetcher(
        lambda: rng.random(3),
        lambda: dict(rng.bit_generator.state),
        lambda s: setattr(rng.bit_generator, "state", s),
        finish=lambda x: x * 2,
    )


def test_prefetched_items_and_states_match_inline_drawing():
    _, inline = _source()
    inline.enabled = False
    rng, ahead = _source()
    for _ in range(3):
        expected_state = inline.state()
        assert ahead.state() == expected_state  # the state before the item drawn ahead
        assert np.array_equal(ahead(), inline())
    # a checkpoint taken now and restored into a fresh prefetcher continues the same sequence
    saved = ahead.state()
    _, resumed = _source(seed=99)
    resumed.set_state(saved)
    following = inline()
    assert np.array_equal(resumed(), following) and np.array_equal(ahead(), following)
    ahead.close()
    resumed.close()


def test_set_state_and_close_drop_the_item_drawn_ahead():
    rng, p = _source()
    first = p()
    state = p.state()  # before the second item, which is being drawn ahead
    p.close()
    assert rng.bit_generator.state == state  # closing undid the draw ahead
    p.set_state(state)
    second = p()
    _, fresh = _source()
    fresh.enabled = False
    assert np.array_equal(fresh(), first) and np.array_equal(fresh(), second)
    p.close()
