// Small asio conveniences shared by the daemon's coroutines.
#pragma once
#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>

namespace kelpie::sheep {

// co_await op(..., kTuple) yields (error_code, results...) instead of throwing.
inline constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);

}  // namespace kelpie::sheep
