/*
 * pool.pml: shmkit's pool slot allocation, free, hand-off and recovery.
 *
 * Modelled code (one Promela step per shared-memory access of the C++):
 *   include/shmkit/detail/pool_base.hpp  try_alloc, alloc, free,
 *                                        free(i, token), claim,
 *                                        wake_sleepers, holder_token
 *   libs/pool/src/pool_base.cpp          alloc_slow, announce_sleeper,
 *                                        wait_for_free, wake_all, claim_n
 *                                        (try_alloc_n), free_n, adopt,
 *                                        recover_stale, used
 *   include/shmkit/sync/futex.hpp        futex_wait_until, futex_wake
 *
 * There is no bitmap and no used counter in the pool: the owner word of a
 * slot is its allocation state (0 free, else the owner id of the handle that
 * holds it), and used() counts owner words. What the code promises, and
 * what is checked here:
 *   - a slot is never held by two live processes, and nobody takes a live
 *     holder's slot (assertions at every claim, adopt, free, take-back and
 *     recovery);
 *   - no slot is lost: once every worker has finished or died and a
 *     recover_stale() has run, every slot is free or held by a live process
 *     (by the slot's holder, or in a hand-off it sent), used() equals the
 *     number of those, and every free slot can be allocated again;
 *   - no lost wakeup: with no deaths (MAXDEATHS=0) a blocked alloc never
 *     needs its poll, since the poll is then not modelled at all and a
 *     sleeper left asleep would be an invalid end state;
 *   - deadlock freedom: no invalid end state, and with LIVENESS the LTL
 *     property `finish` (every execution reaches the late process's end).
 *
 * NW workers each run OPS operations and may die before any step that
 * writes shared memory (at most MAXDEATHS of them). Blocking allocs use
 * auto_recover (pool_options::auto_recover), as a pool whose holders may die
 * must. One more process, `late`, never dies: when all workers have finished
 * or died it runs recover_stale() and checks the end state.
 *
 * Owner ids: worker p has id p + 1, late NW + 1. Ids never repeat in the
 * C++ (make_owner_id: a 52-bit generation), so one id per process is exact.
 *
 * A sender may take back the slot it handed over with free(i, token) while
 * the message is in flight: the CAS races the receiver's adopt, recoveries
 * and other frees. A token names a holder, not one holding (pool.adoc,
 * "hand a slot to another process"): a sender that took a slot back must not
 * allocate again before the first message is answered, or a late adopt of
 * that message could take the slot it allocated anew. So the take-back is
 * a sender's last operation here; REUSE_AFTER_TAKE_BACK lifts that rule, and
 * SPIN then finds exactly that late adopt (the `token-reuse` check, which
 * expects the error).
 *
 * Configuration (spin -D...): NW, SLOTS, OPS, MAXDEATHS; VARIANTS adds
 * try_alloc and try_alloc_n(2) + free_n to alloc, free, adopt and take-back;
 * LIVENESS adds the LTL property; REUSE_AFTER_TAKE_BACK as above.
 */

#ifndef NW
#define NW 3
#endif
#ifndef SLOTS
#define SLOTS 2
#endif
#ifndef OPS
#define OPS 1
#endif
#ifndef MAXDEATHS
#define MAXDEATHS 2
#endif

#define LATE NW
#define NP_ (NW + 1)

/* ---- Shared memory ---------------------------------------------------- */

byte owner[SLOTS];   /* pool_base::owners_: 0 free, else an owner id */
byte wake;           /* pool_control::wake: sequence << 1 | sleepers */

bool alive[NP_];     /* liveness as owner_id_alive() sees it */
byte ndead;

/* futex_wait on `wake`: asleep until a futex_wake (or a poll). */
bool asleep[NP_];

/* The hand-off box: an index and holder_token(i) sent from one process to
 * another (a pipe in a real program; application state, not the pool's). */
byte box_slot;       /* slot + 1; 0: empty */
byte box_token;
byte box_from;       /* the sender's number + 1 */

/* ---- Ghost state --------------------------------------------------------- */

byte held[NP_];      /* bit s: the process believes it holds slot s */
byte flight[SLOTS];  /* the sender's id, while a hand-off of the slot is sent
                        and not yet adopted or refused */
byte ndone;
bit late_done;

#define BIT(s) (1 << (s))
#define ID_ALIVE(o) ((o) != 0 && alive[(o) - 1])

/* ---- Death --------------------------------------------------------------- */

inline die()
{
    ndead++;
    alive[self] = false;
    asleep[self] = false;
    /* What a dead process believed goes with it; its slots stay in the
     * owner words until they are recovered. */
    held[self] = 0;
    i = 0; j = 0; n = 0; got = 0; o = 0; seen = 0; s = 0; t = 0; ok = 0;
    freed = 0; probed = 0; dead_ids = 0; k = 0; claimed = 0; me = 0; op = 0
}

#define CAN_DIE (self != LATE && ndead < MAXDEATHS)
#define DIE_OPT :: atomic { CAN_DIE -> die(); goto dead }
/* A step that writes shared memory, before which the process may die. The
 * (1) keeps an if at the start of `stmt` from merging with DIE_OPT. */
#define S(stmt) if DIE_OPT :: atomic { (1); stmt } fi
/* A step that only reads: a death before it is the same as a death after
 * it, before the next write or wait. */
#define L(stmt) atomic { (1); stmt }

/* No live process other than us believes it holds slot x. */
inline assert_sole_holder(x)
{
    j = 0;
    do
    :: j < NP_ -> assert(j == self || !alive[j] || (held[j] & BIT(x)) == 0); j++
    :: else -> break
    od;
    j = 0
}

/* ---- Wake-ups (pool_base.hpp: "Blocking") ---------------------------------- */

/* futex_wake(control_->wake): every sleeper wakes. */
inline futex_wake_all()
{
    S(j = 0;
      do
      :: j < NP_ -> asleep[j] = false; j++
      :: else -> break
      od;
      j = 0)
}

/* wake_sleepers(): load the wake word; if the sleepers bit is set,
 * wake_all(): CAS it to the next sequence (bit clear), and the winner wakes
 * everyone. */
inline wake_sleepers()
{
    L(seen = wake);
    if
    :: seen & 1 ->
        S(if :: wake == seen -> wake = seen + 1; ok = 1 :: else -> ok = 0 fi);
        if
        :: ok -> futex_wake_all()
        :: else -> skip
        fi;
        ok = 0
    :: else -> skip
    fi;
    seen = 0
}

/* announce_sleeper(): fetch_or(1), then the seq_cst fence (the model is
 * sequentially consistent). seen: the word with the bit set. */
inline announce_sleeper()
{
    S(wake = wake | 1; seen = wake)
}

/* The poll that ends a bounded futex sleep (wait_for_free: the poll
 * interval). Without a death nothing needs it, so it is left out then: a
 * sleeper that would need it stays asleep and the search reports it. In the
 * liveness run it fires only when nothing else can move (SPIN's timeout),
 * which keeps a sleeper from polling forever while others are about to
 * free; in the safety runs it may fire at any time. */
#ifdef LIVENESS
#define POLL (timeout && ndead > 0)
#else
#define POLL (ndead > 0)
#endif

/* wait_for_free(seen): futex_wait_until(wake, seen, until). The kernel
 * compares the word and queues us in one step; we then sleep until a
 * futex_wake or the poll. */
inline wait_for_free()
{
    S(if :: wake == seen -> asleep[self] = true :: else -> skip fi);
    if
    :: !asleep[self] -> skip
    :: atomic { POLL -> asleep[self] = false }
    DIE_OPT
    fi;
    seen = 0
}

/* ---- Allocation -------------------------------------------------------------- */

/* claim(i, me): CAS 0 -> me. ok: claimed. */
inline claim(x)
{
    S(if
      :: owner[x] == 0 -> owner[x] = me; ok = 1; assert_sole_holder(x); held[self] = held[self] | BIT(x)
      :: else -> ok = 0
      fi)
}

/* The handle's cursor (where it last allocated or freed): any slot. */
inline pick_cursor()
{
    i = 0;
    do
    :: i < SLOTS - 1 -> i++
    :: break
    od
}

/* s: the lowest slot in `claimed`. */
inline lowest_claimed()
{
    s = 0;
    do
    :: (claimed & BIT(s)) == 0 -> s++
    :: else -> break
    od
}

/* try_alloc(): scan from the cursor, one load and (if free) one CAS a slot.
 * The cursor is per handle (where it last allocated or freed); any start
 * is allowed here. got: slot + 1, or 0. */
inline try_alloc()
{
    got = 0;
    pick_cursor();
    n = 0;
    do
    :: n < SLOTS ->
        L(o = owner[i]);
        if
        :: o == 0 -> claim(i); if :: ok -> got = i + 1 :: else -> skip fi; ok = 0
        :: else -> skip
        fi;
        o = 0;
        if
        :: got != 0 -> break
        :: else -> i = (i + 1) % SLOTS; n++
        fi
    :: else -> break
    od;
    i = 0; n = 0
}

/* recover_stale(): every slot whose owner is probed dead (once per owner:
 * the alive map) is freed with one CAS dead id -> 0; then, if it freed any,
 * the fence and wake_sleepers(). freed: how many. */
inline recover_stale()
{
    freed = 0;
    probed = 0;
    dead_ids = 0;
    k = 0;
    do
    :: k < SLOTS ->
        L(o = owner[k]);
        if
        :: o != 0 && o != me ->
            if
            :: (probed & BIT(o)) == 0 ->                         /* owner_id_alive */
                L(probed = probed | BIT(o); if :: !ID_ALIVE(o) -> dead_ids = dead_ids | BIT(o) :: else -> skip fi)
            :: else -> skip
            fi;
            if
            :: dead_ids & BIT(o) ->
                S(if
                  :: owner[k] == o -> assert(!ID_ALIVE(o)); owner[k] = 0; freed++
                  :: else -> skip
                  fi)
            :: else -> skip
            fi
        :: else -> skip
        fi;
        o = 0;
        k++
    :: else -> break
    od;
    k = 0; probed = 0; dead_ids = 0;
    if
    :: freed > 0 -> wake_sleepers()
    :: else -> skip
    fi
}

/* alloc() with auto_recover: try_alloc(); else alloc_slow(): announce,
 * scan, recover dead owners' slots (and look again if any), sleep. */
inline alloc()
{
    try_alloc();
    do
    :: got != 0 -> break
    :: else ->
        announce_sleeper();
        try_alloc();
        if
        :: got != 0 -> seen = 0
        :: else ->
            recover_stale();
            if
            :: freed > 0 -> seen = 0
            :: else -> wait_for_free()
            fi;
            freed = 0
        fi
    od
}

/* free(i): exchange -> 0, then wake_sleepers(). Frees only what this
 * process holds (a double free is the caller's error). */
inline free_slot(x)
{
    S(assert(owner[x] == me); owner[x] = 0; held[self] = held[self] & ~BIT(x));
    wake_sleepers()
}

/* try_alloc_n(2) (claim_n): claim slots one CAS each; if fewer than 2 were
 * had, store 0 back into those taken, fence, and wake if any. ok: got 2. */
inline try_alloc_n2()
{
    claimed = 0;
    t = 0;
    n = 0;
    pick_cursor();
    do
    :: n < SLOTS && t < 2 ->
        L(o = owner[i]);
        if
        :: o == 0 -> claim(i); if :: ok -> claimed = claimed | BIT(i); t++ :: else -> skip fi; ok = 0
        :: else -> skip
        fi;
        o = 0;
        i = (i + 1) % SLOTS;
        n++
    :: else -> break
    od;
    i = 0; n = 0;
    if
    :: t == 2 -> ok = 1
    :: else ->
        ok = 0;
        if
        :: t > 0 ->
            do                                                   /* give back */
            :: claimed != 0 ->
                lowest_claimed();
                S(assert(owner[s] == me); owner[s] = 0; held[self] = held[self] & ~BIT(s));
                claimed = claimed & ~BIT(s)
            :: else -> break
            od;
            s = 0;
            wake_sleepers()
        :: else -> skip
        fi
    fi;
    t = 0
}

/* free_n(slots): per slot a load and (if allocated) a store of 0; then the
 * fence and wake_sleepers(). Frees what try_alloc_n2 got. */
inline free_n_claimed()
{
    do
    :: claimed != 0 ->
        lowest_claimed();
        L(o = owner[s]);
        if
        :: o != 0 -> S(assert(owner[s] == me); owner[s] = 0; held[self] = held[self] & ~BIT(s))
        :: else -> skip
        fi;
        o = 0;
        claimed = claimed & ~BIT(s)
    :: else -> break
    od;
    s = 0;
    wake_sleepers()
}

/* ---- Hand-off ---------------------------------------------------------------- */

/* The sender passes the index with holder_token(i) (a load of its own,
 * stable, owner word) and forgets the slot. Only into an empty box, and
 * only if `cond`: the first statement of an option, it decides whether the
 * option can be taken at all. */
inline send_slot(x, cond)
{
    atomic {
        cond && box_slot == 0 -> box_slot = x + 1; box_token = owner[x]; box_from = self + 1;
        held[self] = held[self] & ~BIT(x); flight[x] = me
    }
}

/* The receiver takes the message and adopt(i, token)s the slot: one CAS
 * from the token; false if the slot was freed, recovered or passed on. */
inline receive_and_free()
{
    atomic { box_slot != 0 && box_from != self + 1 ->
             s = box_slot - 1; t = box_token; box_slot = 0; box_token = 0; box_from = 0 };
    S(if
      :: owner[s] == t -> owner[s] = me; ok = 1; assert_sole_holder(s); held[self] = held[self] | BIT(s)
      :: else -> ok = 0
      fi;
      if :: flight[s] == t -> flight[s] = 0 :: else -> skip fi);
    if
    :: ok -> free_slot(s)
    :: else -> skip
    fi;
    s = 0; t = 0; ok = 0
}

/* Whether a sender may take back what it sends (see the top of the file). */
#ifdef REUSE_AFTER_TAKE_BACK
#define TAKE_BACK_ALLOWED (1)
#else
#define TAKE_BACK_ALLOWED (op == OPS - 1)
#endif

/* free(i, token) by the sender of slot x, token t = its own id: one CAS
 * token -> 0, never retried, then wake_sleepers() if it freed. It succeeds
 * only while the message is unadopted (the slot still has the sender's id),
 * so nobody live can hold the slot then. */
inline take_back(x)
{
    S(if
      :: owner[x] == me ->
          owner[x] = 0; ok = 1; assert_sole_holder(x); assert((held[self] & BIT(x)) == 0);
          if :: flight[x] == me -> flight[x] = 0 :: else -> skip fi
      :: else -> ok = 0
      fi);
    if
    :: ok -> wake_sleepers()
    :: else -> skip
    fi;
    ok = 0
}

/* ---- Processes ----------------------------------------------------------------- */

inline one_operation()
{
    if
    :: alloc(); s = got - 1; got = 0;
        if
        :: free_slot(s)
        :: send_slot(s, 1)
        :: send_slot(s, TAKE_BACK_ALLOWED); take_back(s)
        fi;
        s = 0
    :: receive_and_free()
#ifdef VARIANTS
    :: try_alloc(); if :: got != 0 -> s = got - 1; got = 0; free_slot(s); s = 0 :: else -> skip fi
    :: try_alloc_n2(); if :: ok -> ok = 0; free_n_claimed() :: else -> claimed = 0 fi
#endif
    fi
}

#define LOCALS \
    byte me, i, j, n, got, o, seen, s, t, freed, probed, dead_ids, k, claimed, op; \
    bit ok

proctype worker(byte self)
{
    LOCALS;
    me = self + 1;
    do
    :: op < OPS -> one_operation(); op++
    :: else -> break
    od;
    /* It may still die after its last operation: a slot it handed off and
     * nobody adopted is then a dead owner's. */
    if DIE_OPT :: skip fi;
    ndone++;
dead:
    skip
}

/* Checks the end state once every worker has finished or died. */
proctype late(byte self)
{
    LOCALS;
    byte used, live, free_now;
    me = self + 1;
    ndone + ndead == NW;
    recover_stale();
    /* Every slot is free, held by a live process, or in a hand-off from a
     * live process; used() counts exactly those. */
    k = 0;
    do
    :: k < SLOTS ->
        o = owner[k];
        if
        :: o != 0 ->
            assert(ID_ALIVE(o));
            assert((held[o - 1] & BIT(k)) != 0 || flight[k] == o);
            used++
        :: else -> skip
        fi;
        k++
    :: else -> break
    od;
    k = 0;
    do
    :: k < SLOTS ->
        j = 0;
        do
        :: j < NW -> if :: alive[j] && (held[j] & BIT(k)) -> live++ :: else -> skip fi; j++
        :: else -> break
        od;
        if
        :: ID_ALIVE(flight[k]) && owner[k] == flight[k] -> live++
        :: else -> skip
        fi;
        k++
    :: else -> break
    od;
    j = 0; k = 0;
    assert(used == live);
    /* Every free slot can be allocated again. */
    free_now = 0;
    do
    :: try_alloc(); if :: got != 0 -> free_now++ :: else -> break fi
    od;
    assert(free_now == SLOTS - used);
    late_done = 1;
dead:
    skip
}

#ifdef LIVENESS
ltl finish { <> late_done }
#endif

init
{
    byte p;
    atomic {
        do
        :: p < NP_ -> alive[p] = true; p++
        :: else -> break
        od;
        p = 0;
        do
        :: p < NW -> run worker(p); p++
        :: else -> break
        od;
        run late(LATE)
    }
}
