//! Customers and their addresses; personal fields are stored encrypted.
