console.log("tour");
