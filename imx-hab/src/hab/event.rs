//! HAB event records (`DB | len | ver | status reason context engine | data`): decoding of what
//! the ROM's `report_event` returns (imx8m-facts.md §4.3).
