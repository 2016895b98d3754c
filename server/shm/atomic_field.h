// Atomic access to plain integer fields of shared-memory structs.
//
// Contract
// - Segment structs hold plain integers (so they stay trivially copyable and
//   standard layout); a field that one process writes while others read is
//   accessed only through these helpers, which wrap std::atomic_ref (C++20).
// - Only lock-free atomics work across processes (a lock-based fallback would
//   use a lock private to each process), hence the static_asserts.
// - Counters use relaxed order (metrics only); state fields that publish other
//   data use release stores and acquire loads.
#pragma once

#include <atomic>
#include <cstdint>
#include <type_traits>

namespace skirmish::shm {

template <class T>
concept SharedScalar = std::is_trivially_copyable_v<T> && (sizeof(T) <= 8) &&
                       std::atomic_ref<T>::is_always_lock_free;

static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic_ref<std::int64_t>::is_always_lock_free);
static_assert(std::atomic_ref<std::uint32_t>::is_always_lock_free);
static_assert(alignof(std::uint64_t) >=
              std::atomic_ref<std::uint64_t>::required_alignment);
static_assert(alignof(std::int64_t) >=
              std::atomic_ref<std::int64_t>::required_alignment);

template <SharedScalar T>
inline T shared_load(const T& field,
                     std::memory_order order = std::memory_order_acquire) {
  // atomic_ref<const T> is not available before C++26; the load never writes.
  return std::atomic_ref<T>(const_cast<T&>(field)).load(order);
}

template <SharedScalar T>
inline void shared_store(T& field, T value,
                         std::memory_order order = std::memory_order_release) {
  std::atomic_ref<T>(field).store(value, order);
}

// Returns the previous value.
template <SharedScalar T>
  requires std::is_integral_v<T>
inline T shared_add(T& field, T delta = 1,
                    std::memory_order order = std::memory_order_relaxed) {
  return std::atomic_ref<T>(field).fetch_add(delta, order);
}

template <SharedScalar T>
  requires std::is_integral_v<T>
inline T shared_sub(T& field, T delta = 1,
                    std::memory_order order = std::memory_order_relaxed) {
  return std::atomic_ref<T>(field).fetch_sub(delta, order);
}

// Raises `field` to at least `value` (high-water marks).
template <SharedScalar T>
  requires std::is_integral_v<T>
inline void shared_max(T& field, T value) {
  std::atomic_ref<T> ref(field);
  T seen = ref.load(std::memory_order_relaxed);
  while (seen < value &&
         !ref.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

}  // namespace skirmish::shm
