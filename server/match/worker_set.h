// skirmish::match::WorkerSet: the workers one match event fans out to
// (MatchFound, MatchTicked, MatchEnded), as a bitset over worker indices.
//
// Contract
// - Sized once, from the segment's worker slots (shm::Segment::
//   worker_slots(): both banks, so during a binary upgrade the new
//   generation's indices, bank_base(1) and up, fit too). clear(), insert()
//   and for_each() never allocate, so a tick may use it per match.
// - insert() of an index outside the slots (shm::kNoWorker: a player in the
//   resume grace) is refused and returns false; nothing is dropped in
//   silence that could be a worker.
// - for_each() visits the members in increasing index order.
//
// Why not a 64-bit mask: the segment holds two banks of up to
// shm::kMaxWorkers workers each; a fixed mask silently skipped every index
// past it (issue 12, defect 7).
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <vector>

namespace skirmish::match {

class WorkerSet {
 public:
  WorkerSet() = default;
  explicit WorkerSet(std::uint32_t slots) { resize(slots); }

  // Allocates; call at start, not per event.
  void resize(std::uint32_t slots) {
    slots_ = slots;
    words_.assign((std::size_t(slots) + 63) / 64, 0);
  }
  std::uint32_t slots() const { return slots_; }

  void clear() { std::fill(words_.begin(), words_.end(), std::uint64_t(0)); }
  bool insert(std::uint32_t w) {
    if (w >= slots_) return false;
    words_[w / 64] |= std::uint64_t(1) << (w % 64);
    return true;
  }
  bool contains(std::uint32_t w) const { return w < slots_ && (words_[w / 64] >> (w % 64)) & 1u; }
  bool empty() const {
    return std::all_of(words_.begin(), words_.end(), [](std::uint64_t x) { return x == 0; });
  }

  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < words_.size(); ++i)
      for (std::uint64_t bits = words_[i]; bits != 0; bits &= bits - 1)
        f(std::uint32_t(i * 64 + std::size_t(std::countr_zero(bits))));
  }

 private:
  std::vector<std::uint64_t> words_;
  std::uint32_t slots_ = 0;
};

}  // namespace skirmish::match
